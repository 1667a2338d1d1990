// Package sample makes realistic catalogue records for the demo, tests and
// benchmarks: supply items, needs (with 揭榜挂帅 challenge calls) and experts of the
// four centres, in Chinese, across Tianjin's "1+3+4" industries. Output is a pure
// function of its arguments.
package sample

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"

	"liandong/schema"
)

type tech struct {
	industry string
	title    string
	keywords []string
}

var techs = []tech{
	{"new-materials", "高镍三元正极材料连续化制备技术", []string{"正极材料", "锂电池", "高镍"}},
	{"new-materials", "碳纤维复合材料低成本成型工艺", []string{"碳纤维", "复合材料", "成型"}},
	{"new-materials", "高性能稀土永磁材料晶界扩散技术", []string{"稀土", "永磁", "晶界扩散"}},
	{"new-energy", "钙钛矿叠层太阳能电池制备技术", []string{"钙钛矿", "光伏", "叠层电池"}},
	{"new-energy", "兆瓦级质子交换膜电解水制氢系统", []string{"氢能", "电解水", "质子交换膜"}},
	{"new-energy", "风电齿轮箱轴承寿命预测与健康管理", []string{"风电", "轴承", "寿命预测"}},
	{"new-energy", "液流电池储能系统集成技术", []string{"储能", "液流电池", "系统集成"}},
	{"biomedicine", "CAR-T细胞治疗产品工艺开发平台", []string{"细胞治疗", "CAR-T", "工艺开发"}},
	{"biomedicine", "mRNA疫苗递送脂质纳米颗粒技术", []string{"mRNA", "疫苗", "纳米颗粒"}},
	{"biomedicine", "中药配方颗粒质量控制关键技术", []string{"中药", "质量控制", "配方颗粒"}},
	{"intelligent-tech", "工业视觉缺陷检测深度学习算法", []string{"机器视觉", "缺陷检测", "深度学习"}},
	{"intelligent-tech", "信创环境下数据库迁移与适配工具", []string{"信创", "数据库", "国产化"}},
	{"intelligent-tech", "大模型驱动的工业知识问答系统", []string{"大模型", "知识图谱", "工业软件"}},
	{"intelligent-tech", "自主可控工业操作系统内核", []string{"操作系统", "信创", "工业控制"}},
	{"aerospace", "航空发动机叶片精密铸造技术", []string{"航空发动机", "精密铸造", "叶片"}},
	{"aerospace", "低轨卫星星载相控阵天线", []string{"卫星", "相控阵", "天线"}},
	{"high-end-equipment", "五轴联动数控机床误差补偿技术", []string{"数控机床", "五轴", "误差补偿"}},
	{"high-end-equipment", "工业机器人高精度减速器", []string{"工业机器人", "减速器", "精密传动"}},
	{"automotive", "固态锂电池电解质界面改性技术", []string{"固态电池", "电解质", "新能源汽车"}},
	{"automotive", "智能网联汽车车路协同感知系统", []string{"车路协同", "智能网联", "自动驾驶"}},
	{"green-petrochemicals", "二氧化碳加氢制甲醇催化剂", []string{"二氧化碳", "甲醇", "催化剂"}},
	{"green-petrochemicals", "炼化废水深度处理与回用技术", []string{"废水处理", "炼化", "回用"}},
	{"other", "农作物病虫害智能监测预警平台", []string{"智慧农业", "病虫害", "监测预警"}},
}

var orgs = map[string][]string{
	"hq":      {"清华大学", "北京大学", "北京航空航天大学", "北京理工大学", "中国科学院自动化研究所"},
	"tianjin": {"天津大学", "南开大学", "河北工业大学", "天津科技大学", "中国医学科学院血液病医院"},
	"hebei":   {"河北大学", "燕山大学", "华北电力大学（保定）", "河北科技大学", "石家庄铁道大学"},
	"xiongan": {"雄安创新研究院", "中国电子科技集团雄安研究院", "中国星网雄安基地", "雄安新区智能城市创新联合会"},
}

var enterprises = map[string][]string{
	"hq":      {"北京某新能源科技有限公司", "中关村某智能装备公司", "北京某生物医药集团"},
	"tianjin": {"天津某装备制造公司", "天津某石化公司", "天津某汽车零部件公司", "天津某信创软件公司"},
	"hebei":   {"河北某钢铁集团", "保定某电力设备公司", "石家庄某制药公司"},
	"xiongan": {"雄安某数字城市公司", "雄安某绿色建材公司"},
}

var surnames = []string{"王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴"}

// Records returns n records of each catalogue for centre: supply items, needs and
// experts. seed varies the choice; the same arguments give the same records.
func Records(centre string, n int, seed uint64) []*schema.Record {
	r := rand.New(rand.NewPCG(seed, uint64(len(centre))*7919))
	centreOrgs := orgs[centre]
	if len(centreOrgs) == 0 {
		centreOrgs = orgs["tianjin"]
	}
	ents := enterprises[centre]
	if len(ents) == 0 {
		ents = enterprises["tianjin"]
	}
	var out []*schema.Record
	vis := func(i int) string {
		switch i % 10 {
		case 0:
			return schema.VisibilityPrivate
		case 1, 2, 3:
			return schema.VisibilityPublic
		}
		return schema.VisibilityFederation
	}
	for i := 0; i < n; i++ {
		t := techs[r.IntN(len(techs))]
		org := centreOrgs[r.IntN(len(centreOrgs))]
		person := surnames[r.IntN(len(surnames))] + "老师"
		out = append(out, record(schema.CatalogueSupply, vis(i), map[string]any{
			"title":          t.title,
			"summary":        fmt.Sprintf("%s研发团队在%s方向形成的成果，已完成中试验证，可面向京津冀企业开展转化。", org, t.keywords[0]),
			"industry":       t.industry,
			"keywords":       t.keywords,
			"trl":            3 + r.IntN(6),
			"ip":             []map[string]string{{"type": "patent", "number": fmt.Sprintf("ZL20%02d1%07d.%d", 18+r.IntN(7), r.IntN(10000000), r.IntN(10)), "status": "granted"}},
			"transfer_modes": [][]string{{"license"}, {"license", "joint-development"}, {"assignment"}, {"equity", "service"}}[r.IntN(4)],
			"owner_org":      org,
			"disruptive":     r.IntN(8) == 0,
			"contact":        map[string]string{"person": person, "phone": fmt.Sprintf("022-%08d", r.IntN(100000000)), "email": fmt.Sprintf("tt%d@example.edu.cn", r.IntN(1000))},
		}))
	}
	for i := 0; i < n; i++ {
		t := techs[r.IntN(len(techs))]
		ent := ents[r.IntN(len(ents))]
		body := map[string]any{
			"title":       t.keywords[0] + "关键技术攻关需求",
			"description": fmt.Sprintf("%s在%s方面存在技术瓶颈，寻求高校院所合作解决%s问题。", ent, t.keywords[0], t.keywords[len(t.keywords)-1]),
			"industry":    t.industry,
			"keywords":    t.keywords,
			"enterprise":  ent,
			"budget":      map[string]any{"min": 200000 * (1 + r.IntN(5)), "max": 2000000 * (1 + r.IntN(5)), "currency": "CNY"},
			"deadline":    fmt.Sprintf("2027-%02d-%02d", 1+r.IntN(12), 1+r.IntN(28)),
			"status":      []string{"open", "open", "open", "matched", "closed"}[r.IntN(5)],
			"kind":        "need",
			"contact":     map[string]string{"person": surnames[r.IntN(len(surnames))] + "经理", "phone": fmt.Sprintf("0311-%08d", r.IntN(100000000))},
		}
		if i%4 == 0 {
			body["kind"] = "challenge"
			body["title"] = "揭榜挂帅：" + t.title
			body["challenge"] = map[string]any{"bounty": 1000000 * (1 + r.IntN(5)), "targets": []string{"关键指标达到国内领先水平", "完成工程化验证"}, "max_months": 12 + 12*r.IntN(2)}
		}
		out = append(out, record(schema.CatalogueNeed, vis(i), body))
	}
	for i := 0; i < n; i++ {
		t := techs[r.IntN(len(techs))]
		org := centreOrgs[r.IntN(len(centreOrgs))]
		out = append(out, record(schema.CatalogueExpert, vis(i), map[string]any{
			"name":        surnames[r.IntN(len(surnames))] + []string{"明", "华", "强", "敏", "静", "伟"}[r.IntN(6)],
			"title":       []string{"教授", "研究员", "高级工程师", "副教授"}[r.IntN(4)],
			"affiliation": org,
			"fields":      []string{t.industry},
			"keywords":    t.keywords,
			"bio":         fmt.Sprintf("长期从事%s研究，主持国家重点研发计划项目。", t.keywords[0]),
			"roles":       [][]string{{"evaluation"}, {"consulting"}, {"evaluation", "review"}}[r.IntN(3)],
			"contact":     map[string]string{"email": fmt.Sprintf("expert%d@example.edu.cn", r.IntN(10000))},
		}))
	}
	return out
}

func record(catalogue, visibility string, body map[string]any) *schema.Record {
	js, err := json.Marshal(body)
	if err != nil {
		panic(err) // the bodies above are plain maps of strings and numbers
	}
	return &schema.Record{Catalogue: catalogue, Visibility: visibility, Schema: schema.CurrentSchema, Body: js}
}
