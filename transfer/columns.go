package transfer

import (
	"strings"

	"liandong/schema"
)

// column is one column of a catalogue's table: the body field (or envelope
// member) it fills and the headers that name it, the first being the one
// Export writes. Headers are matched after trimming spaces and ignoring case.
type column struct {
	field   string // envelope member, "body.<member>", or a pseudo-field below
	headers []string
	kind    valueKind
}

type valueKind int

const (
	kindText     valueKind = iota
	kindList               // split on , ，、 ; ； and newlines
	kindInt                // TRL, months
	kindMoney              // amounts, "50万" allowed
	kindBool               // 是/否, true/false, 1/0, y/n
	kindIndustry           // a code, or its Chinese or English name
	kindIndustries
	kindDate
	kindTime
	kindEnum // with a table of Chinese names
	kindEnumList
)

// Pseudo-fields that are not body members as they are.
const (
	fieldKey        = "key"
	fieldOrigin     = "origin"
	fieldVisibility = "visibility"
	fieldExpires    = "expires_at"
	fieldPerson     = "contact.person"
	fieldPhone      = "contact.phone"
	fieldEmail      = "contact.email"
	fieldPatents    = "patents"
	fieldBudgetMin  = "budget.min"
	fieldBudgetMax  = "budget.max"
	fieldCurrency   = "budget.currency"
	fieldBounty     = "challenge.bounty"
	fieldTargets    = "challenge.targets"
	fieldMaxMonths  = "challenge.max_months"
)

var common = []column{
	{fieldKey, []string{"编号", "key", "id", "标识"}, kindText},
	{fieldOrigin, []string{"来源中心", "origin"}, kindText},
	{fieldVisibility, []string{"可见范围", "visibility", "公开范围"}, kindEnum},
	{fieldExpires, []string{"有效期至", "expires_at"}, kindTime},
	{"body.keywords", []string{"关键词", "keywords"}, kindList},
	{fieldPerson, []string{"联系人", "contact_person"}, kindText},
	{fieldPhone, []string{"联系电话", "contact_phone", "电话"}, kindText},
	{fieldEmail, []string{"电子邮箱", "contact_email", "邮箱"}, kindText},
}

var columnsByCatalogue = map[string][]column{
	schema.CatalogueSupply: {
		{"body.title", []string{"标题", "title", "成果名称", "名称"}, kindText},
		{"body.summary", []string{"摘要", "summary", "成果简介", "简介"}, kindText},
		{"body.industry", []string{"所属领域", "industry", "领域", "行业"}, kindIndustry},
		{"body.trl", []string{"技术成熟度", "trl", "成熟度"}, kindInt},
		{"body.owner_org", []string{"所属单位", "owner_org", "成果单位", "持有单位"}, kindText},
		{"body.transfer_modes", []string{"转化方式", "transfer_modes"}, kindEnumList},
		{"body.disruptive", []string{"颠覆性", "disruptive"}, kindBool},
		{fieldPatents, []string{"专利号", "patents"}, kindList},
		{"body.inventors", []string{"完成人", "inventors", "发明人"}, kindList},
	},
	schema.CatalogueNeed: {
		{"body.title", []string{"标题", "title", "需求名称", "名称"}, kindText},
		{"body.description", []string{"需求描述", "description", "描述"}, kindText},
		{"body.industry", []string{"所属领域", "industry", "领域", "行业"}, kindIndustry},
		{"body.enterprise", []string{"需求企业", "enterprise", "企业", "企业名称"}, kindText},
		{fieldBudgetMin, []string{"预算下限", "budget_min"}, kindMoney},
		{fieldBudgetMax, []string{"预算上限", "budget_max"}, kindMoney},
		{fieldCurrency, []string{"币种", "currency"}, kindText},
		{"body.deadline", []string{"截止日期", "deadline"}, kindDate},
		{"body.status", []string{"状态", "status"}, kindEnum},
		{"body.kind", []string{"类型", "kind"}, kindEnum},
		{fieldBounty, []string{"悬赏金额", "bounty"}, kindMoney},
		{fieldTargets, []string{"攻关目标", "targets"}, kindList},
		{fieldMaxMonths, []string{"攻关周期（月）", "max_months", "攻关周期"}, kindInt},
	},
	schema.CatalogueExpert: {
		{"body.name", []string{"姓名", "name"}, kindText},
		{"body.title", []string{"职称", "title"}, kindText},
		{"body.affiliation", []string{"工作单位", "affiliation", "单位"}, kindText},
		{"body.fields", []string{"专业领域", "fields", "领域"}, kindIndustries},
		{"body.bio", []string{"个人简介", "bio", "简介"}, kindText},
		{"body.roles", []string{"角色", "roles"}, kindEnumList},
	},
}

// columns returns the columns of a catalogue, its own before the common ones.
func columns(catalogue string) []column {
	return append(append([]column(nil), columnsByCatalogue[catalogue]...), common...)
}

// enumNames maps the Chinese (and a few other) names of coded values to codes,
// by field.
var enumNames = map[string]map[string]string{
	fieldVisibility: {"公开": "public", "联盟": "federation", "共享": "federation", "联盟内共享": "federation", "内部": "private", "私有": "private", "不公开": "private"},
	"body.status":   {"开放": "open", "征集中": "open", "已对接": "matched", "已匹配": "matched", "已关闭": "closed", "关闭": "closed"},
	"body.kind":     {"需求": "need", "技术需求": "need", "揭榜挂帅": "challenge", "揭榜": "challenge"},
	"body.transfer_modes": {"许可": "license", "转让": "assignment", "合作开发": "joint-development", "作价入股": "equity", "入股": "equity",
		"技术服务": "service", "服务": "service"},
	"body.roles": {"评审": "evaluation", "评价": "evaluation", "咨询": "consulting", "论证": "review"},
}

// codeOf returns the code for a cell value of an enum field: the code itself,
// or its Chinese name.
func codeOf(field, v string) string {
	if c, ok := enumNames[field][v]; ok {
		return c
	}
	return strings.ToLower(v)
}

// enumLabel is the Chinese name Export writes for a code, or the code.
func enumLabel(field, code string) string {
	best := ""
	for name, c := range enumNames[field] {
		// Several names map to a code: write the shortest, then first in order.
		if c == code && (best == "" || len([]rune(name)) < len([]rune(best)) || len([]rune(name)) == len([]rune(best)) && name < best) {
			best = name
		}
	}
	if best == "" {
		return code
	}
	return best
}

// industryCode accepts an industry code, its Chinese name or its English name.
func industryCode(v string) string {
	for _, in := range schema.Industries {
		if strings.EqualFold(v, in.Code) || v == in.ZH || strings.EqualFold(v, in.EN) {
			return in.Code
		}
	}
	return strings.ToLower(v)
}
