package ui

import (
	"net/http"

	"liandong/schema"
)

// Languages of the console. Chinese is the default; English is switched on with
// ?lang=en (remembered in a cookie).
const (
	langZH = "zh"
	langEN = "en"
)

const langCookie = "ld_lang"

// lang picks the language of r: the lang parameter, then the cookie, then Chinese.
// It reports whether the parameter asked for a change to remember.
func lang(r *http.Request) (l string, fromParam bool) {
	switch r.URL.Query().Get("lang") {
	case langEN:
		return langEN, true
	case langZH:
		return langZH, true
	}
	if c, err := r.Cookie(langCookie); err == nil && c.Value == langEN {
		return langEN, false
	}
	return langZH, false
}

// messages holds every text of the console: key → {Chinese, English}.
var messages = map[string][2]string{
	"app":                    {"联动 · 数据交换控制台", "liandong · data-exchange console"},
	"nav.records":            {"目录检索", "Catalogues"},
	"nav.new":                {"新建记录", "New record"},
	"nav.federation":         {"联邦状态", "Federation"},
	"nav.signin":             {"登录", "Sign in"},
	"nav.signout":            {"退出", "Sign out"},
	"nav.lang":               {"English", "中文"},
	"centre.this":            {"本节点", "This node"},
	"anon.notice":            {"未登录：只显示公开记录。登录后可查看联邦共享记录。", "Not signed in: only public records are shown. Sign in to see records shared in the federation."},
	"signed.as":              {"已登录", "Signed in as"},
	"search":                 {"检索", "Search"},
	"search.q":               {"关键词", "Keywords"},
	"search.placeholder":     {"如：钙钛矿 光伏", "e.g. 钙钛矿 光伏"},
	"filter.all":             {"全部", "All"},
	"filter.catalogue":       {"目录", "Catalogue"},
	"filter.industry":        {"行业", "Industry"},
	"filter.origin":          {"来源中心", "Origin centre"},
	"filter.status":          {"需求状态", "Need status"},
	"filter.trl":             {"成熟度不低于", "Maturity at least"},
	"filter.reset":           {"清除条件", "Clear"},
	"list.empty":             {"没有符合条件的记录。", "No records match."},
	"list.next":              {"下一页", "Next page"},
	"list.first":             {"回到第一页", "First page"},
	"list.total":             {"共 %d 条匹配", "%d matches"},
	"list.scanned":           {"按成熟度筛选：本页检查了 %d 条记录。", "Filtered by maturity: this page looked at %d records."},
	"col.title":              {"名称", "Title"},
	"col.catalogue":          {"目录", "Catalogue"},
	"col.origin":             {"来源", "Origin"},
	"col.industry":           {"行业", "Industry"},
	"col.detail":             {"成熟度/状态", "Maturity / status"},
	"col.visibility":         {"可见范围", "Visibility"},
	"col.updated":            {"更新时间", "Updated"},
	"cat.supply":             {"科技成果供给", "Technology supply"},
	"cat.need":               {"产业技术需求", "Industry need"},
	"cat.expert":             {"专家", "Expert"},
	"vis.private":            {"仅本中心", "Private"},
	"vis.federation":         {"联邦共享", "Federation"},
	"vis.public":             {"公开", "Public"},
	"status.open":            {"征集中", "Open"},
	"status.matched":         {"已对接", "Matched"},
	"status.closed":          {"已关闭", "Closed"},
	"kind.need":              {"一般需求", "Need"},
	"kind.challenge":         {"揭榜挂帅", "Challenge call"},
	"ip.pending":             {"申请中", "Pending"},
	"ip.granted":             {"已授权", "Granted"},
	"ip.lapsed":              {"已失效", "Lapsed"},
	"ip.expired":             {"已届满", "Expired"},
	"mode.license":           {"许可", "License"},
	"mode.assignment":        {"转让", "Assignment"},
	"mode.joint-development": {"合作开发", "Joint development"},
	"mode.equity":            {"作价入股", "Equity"},
	"mode.service":           {"技术服务", "Service"},
	"role.evaluation":        {"评审", "Evaluation"},
	"role.consulting":        {"咨询", "Consulting"},
	"role.review":            {"论证", "Review"},
	"expired":                {"已过期", "Expired"},
	"deleted":                {"已删除", "Deleted"},
	"yes":                    {"是", "Yes"},
	"no":                     {"否", "No"},

	"rec.envelope":      {"记录信息", "Record"},
	"rec.body":          {"内容", "Content"},
	"rec.id":            {"编号", "ID"},
	"rec.version":       {"版本", "Version"},
	"rec.origin":        {"来源中心", "Origin centre"},
	"rec.visibility":    {"可见范围", "Visibility"},
	"rec.created":       {"创建时间", "Created"},
	"rec.updated":       {"更新时间", "Updated"},
	"rec.expires":       {"有效期至", "Expires"},
	"rec.noexpiry":      {"长期有效", "No expiry"},
	"rec.broker":        {"对接中心", "Contact brokered by"},
	"rec.schema":        {"数据版本", "Body schema"},
	"rec.other":         {"其他字段", "Other fields"},
	"rec.edit":          {"编辑", "Edit"},
	"rec.saved":         {"已保存。", "Saved."},
	"rec.contact.none":  {"联系方式不在此显示：个人信息只保存在来源中心，且仅对该中心具有 pii 权限的令牌可见。请通过对接中心 %s 联系。", "Contact details are not shown: personal data stays at the origin centre and only its tokens with the pii scope see it. Ask the brokering centre, %s."},
	"rec.contact.scope": {"联系方式仅对本中心具有 pii 权限的令牌可见。", "Contact details are shown only to this centre's tokens with the pii scope."},
	"rec.notfound":      {"找不到记录 %s，或你无权查看。", "No record %s, or you may not see it."},
	"rec.notfound.anon": {"找不到公开记录 %s。登录后可查看联邦共享记录。", "No public record %s. Sign in to see records shared in the federation."},

	"hist.title":              {"版本历史（签名日志）", "Version history (signed log)"},
	"hist.empty":              {"签名日志中没有此记录的版本（仅本中心可见的版本不进入日志）。", "The signed log holds no version of this record (private versions never enter it)."},
	"hist.version":            {"版本", "Version"},
	"hist.op":                 {"操作", "Operation"},
	"hist.time":               {"签名时间", "Signed at"},
	"hist.seq":                {"日志序号", "Log seq"},
	"hist.kid":                {"签名密钥", "Signing key"},
	"hist.hash":               {"条目哈希", "Entry hash"},
	"hist.verified":           {"签名验证", "Signature"},
	"op.create":               {"创建", "create"},
	"op.update":               {"更新", "update"},
	"op.delete":               {"删除", "delete"},
	"op.withdraw":             {"撤回", "withdraw"},
	"ver.signed-here":         {"本节点签名", "signed by this node"},
	"ver.verified-at-receipt": {"接收时已验证", "verified at receipt"},
	"check.valid":             {"现在复核有效", "re-checked: valid"},
	"check.invalid":           {"现在复核失败", "re-check failed"},

	"match.title.need":   {"供需对接：可满足此需求的成果与专家", "Matchmaking: supply items and experts for this need"},
	"match.title.supply": {"供需对接：此成果可满足的需求与专家", "Matchmaking: needs and experts this supply item could answer"},
	"match.empty":        {"暂无匹配。", "No matches yet."},
	"match.score":        {"匹配度", "Score"},
	"match.reasons":      {"匹配理由", "Reasons"},
	"reason.text":        {"文本相似", "shared words"},
	"reason.keywords":    {"关键词", "keywords"},
	"reason.industry":    {"行业相同", "same industry"},
	"reason.maturity":    {"成熟度", "maturity"},
	"reason.challenge":   {"揭榜目标", "challenge targets"},
	"match.unavailable":  {"匹配结果暂不可用：%s", "Matchmaking unavailable: %s"},

	"form.new":              {"新建%s", "New %s"},
	"form.edit":             {"编辑 %s", "Edit %s"},
	"form.save":             {"保存", "Save"},
	"form.cancel":           {"取消", "Cancel"},
	"form.errors":           {"记录未保存：请修改标出的字段。", "The record was not saved: correct the marked fields."},
	"form.required":         {"必填", "required"},
	"form.list.hint":        {"用逗号、顿号或换行分隔", "separate with commas or new lines"},
	"form.lines.hint":       {"每行一项", "one per line"},
	"form.list.lines.hint":  {"每行一项（逗号、顿号是词的一部分）", "one per line (a comma is part of the word)"},
	"form.ip.hint":          {"每行一项：类型 | 编号 | 状态，空缺的一栏写 -，如 patent | ZL 202110345678.9 | granted；状态为 pending、granted、lapsed 或 expired", "one per line: type | number | status, with - for a column left empty, e.g. patent | ZL 202110345678.9 | granted; the status is pending, granted, lapsed or expired"},
	"form.pii.hint":         {"个人信息：只保存在本中心，不进入联邦日志。", "Personal data: kept at this centre only, never in the federation's log."},
	"form.pii.unshown":      {"以下内容也保存在本记录中，但表单中没有对应栏目。清空本组所有栏目后保存，将连同这些内容一并删除。", "Also stored in this record, with no field in this form. Clearing every field of this section and saving erases these too."},
	"form.pii.unshown.only": {"以下内容也保存在本记录中，但表单中没有对应栏目。本组栏目为空时保存会保留它们；如需删除，请先在本组任一栏目填写内容并保存，再清空本组所有栏目后保存。", "Also stored in this record, with no field in this form. Saving with this section's fields empty keeps them; to erase them, fill in a field of this section and save, then clear every field of this section and save again."},
	"form.pii.needed":       {"编辑本中心记录需要具有 pii 权限的令牌：否则看不到的联系方式会在保存时丢失。", "Editing needs a token with the pii scope: otherwise contact details you cannot see would be lost on saving."},
	"form.conflict":         {"记录在你打开后已被修改（现在是第 %d 版）。请重新打开再编辑。", "The record changed after you opened it (now version %d). Open it again to edit."},
	"form.signin":           {"新建和编辑记录需要登录（具有 write 权限的本中心令牌）。", "Creating and editing records needs a sign-in with a token of this centre with the write scope."},
	"form.signin.save":      {"记录未保存：登录已失效或尚未登录。请在新标签页中登录（具有 write 权限的本中心令牌），然后回到这里再次保存，填写的内容仍在下面。", "The record was not saved: your sign-in is no longer valid, or you are not signed in. Sign in in a new tab (a token of this centre with the write scope), then come back and save again: what you typed is below."},
	"form.signin.newtab":    {"在新标签页中登录", "Sign in in a new tab"},
	"form.csrf":             {"记录未保存：表单已过期或来源不明（例如在另一个标签页登录或退出之后）。填写的内容仍在下面，请检查后再次保存。", "The record was not saved: the form expired or came from elsewhere (for example after signing in or out in another tab). What you typed is below: check it and save again."},
	"form.catalogue":        {"目录", "Catalogue"},
	"form.expires_at":       {"有效期至", "Expires on"},
	"form.visibility":       {"可见范围", "Visibility"},
	"form.group.budget":     {"预算", "Budget"},
	"form.group.challenge":  {"揭榜挂帅条款（类型为揭榜挂帅时必填）", "Challenge terms (required for a challenge call)"},
	"form.group.contact":    {"联系人", "Contact"},
	"form.other":            {"其他问题", "Other problems"},

	"field.title":                {"名称", "Title"},
	"field.summary":              {"成果简介", "Summary"},
	"field.description":          {"需求描述", "Description"},
	"field.industry":             {"行业", "Industry"},
	"field.keywords":             {"关键词", "Keywords"},
	"field.trl":                  {"技术成熟度（TRL 1–9）", "Technology readiness (TRL 1–9)"},
	"field.ip":                   {"知识产权", "Intellectual property"},
	"field.transfer_modes":       {"转化方式", "Transfer modes"},
	"field.owner_org":            {"成果单位", "Owner organisation"},
	"field.disruptive":           {"颠覆性技术", "Disruptive technology"},
	"field.inventors":            {"发明人", "Inventors"},
	"field.enterprise":           {"需求企业", "Enterprise"},
	"field.budget.min":           {"预算下限（元）", "Budget minimum"},
	"field.budget.max":           {"预算上限（元）", "Budget maximum"},
	"field.budget.currency":      {"币种", "Currency"},
	"field.deadline":             {"截止日期", "Deadline"},
	"field.status":               {"状态", "Status"},
	"field.kind":                 {"类型", "Kind"},
	"field.challenge.bounty":     {"榜额（元）", "Bounty"},
	"field.challenge.targets":    {"攻关目标", "Targets"},
	"field.challenge.max_months": {"攻关期限（月）", "Maximum months"},
	"field.name":                 {"姓名", "Name"},
	"field.expert.title":         {"职称", "Professional title"},
	"field.affiliation":          {"单位", "Affiliation"},
	"field.fields":               {"领域", "Fields"},
	"field.bio":                  {"简介", "Biography"},
	"field.roles":                {"角色", "Roles"},
	"field.contact.person":       {"联系人", "Person"},
	"field.contact.phone":        {"电话", "Phone"},
	"field.contact.email":        {"邮箱", "E-mail"},
	"field.challenge":            {"揭榜挂帅条款", "Challenge terms"},
	"field.budget":               {"预算", "Budget"},
	"field.contact":              {"联系人", "Contact"},

	"rule.required":   {"必填", "required"},
	"rule.type":       {"类型不正确", "wrong type"},
	"rule.max_length": {"过长", "too long"},
	"rule.min_items":  {"项数不足", "too few items"},
	"rule.max_items":  {"项数过多", "too many items"},
	"rule.unique":     {"有重复项", "repeated item"},
	"rule.min":        {"过小", "too small"},
	"rule.max":        {"过大", "too large"},
	"rule.enum":       {"取值无效", "not allowed"},
	"rule.format":     {"格式不正确", "wrong format"},
	"rule.forbidden":  {"不允许", "not allowed here"},
	"rule.range":      {"范围不正确", "bad range"},
	"rule.mismatch":   {"不一致", "mismatch"},

	"fed.title":          {"联邦状态", "Federation"},
	"fed.node":           {"本节点", "This node"},
	"fed.bundle":         {"信任包", "Trust bundle"},
	"fed.bundle.version": {"版本", "Version"},
	"fed.bundle.expires": {"到期时间", "Expires"},
	"fed.bundle.soon":    {"即将到期", "expires soon"},
	"fed.raft":           {"Raft 角色", "Raft role"},
	"fed.leader":         {"领导者", "Leader"},
	"fed.term":           {"任期", "Term"},
	"fed.applied":        {"已应用/已提交", "Applied / committed"},
	"fed.voters":         {"投票成员", "Voters"},
	"fed.replicas":       {"本中心副本", "Replicas of this centre"},
	"fed.members":        {"成员中心", "Member centres"},
	"fed.peers":          {"对等节点", "Peers"},
	"fed.peer":           {"节点", "Peer"},
	"fed.member":         {"中心", "Centre"},
	"fed.state":          {"连接", "Link"},
	"fed.connected":      {"已连接", "connected"},
	"fed.stalled":        {"停滞", "stalled"},
	"fed.disconnected":   {"未连接", "disconnected"},
	"fed.lastcontact":    {"最近联系", "Last contact"},
	"fed.rtt":            {"往返时延", "RTT"},
	"fed.lasterror":      {"最近错误", "Last error"},
	"fed.origins":        {"各中心日志同步", "Origin logs"},
	"fed.origin":         {"来源", "Origin"},
	"fed.local":          {"本地序号", "Local seq"},
	"fed.best":           {"已知最新", "Best known"},
	"fed.lag":            {"落后", "Lag"},
	"fed.lag.entries":    {"%d 条", "%d entries"},
	"fed.caughtup":       {"已同步", "caught up"},
	"fed.pulling":        {"拉取中", "pulling"},
	"fed.removed":        {"已移除", "removed"},
	"fed.never":          {"从未", "never"},
	"fed.needscope":      {"查看联邦状态需要登录（具有 read 权限的令牌）。", "The federation page needs a sign-in with a token with the read scope."},
	"fed.peerid":         {"libp2p 节点 ID", "libp2p peer id"},
	"fed.refresh":        {"每 5 秒自动刷新", "Refresh every 5 s"},

	"signin.title":     {"登录", "Sign in"},
	"signin.token":     {"访问令牌", "Access token"},
	"signin.hint":      {"粘贴本中心签发的令牌（liandong token issue）。令牌只保存在本次浏览器会话中，关闭浏览器即失效。", "Paste a token issued by a centre (liandong token issue). It is kept for this browser session only."},
	"signin.submit":    {"登录", "Sign in"},
	"signin.refused":   {"令牌被拒绝：%s", "The token was refused: %s"},
	"signin.notready":  {"此副本尚未就绪（正在重放日志或追赶主节点），请稍后重试，或使用其他副本。", "This replica is not ready yet (it is replaying its log or catching up with its leader); retry in a moment or use another replica."},
	"signin.unchecked": {"暂时无法核验令牌：%s。请稍后重试。", "The token could not be checked now: %s. Retry in a moment."},
	"signin.empty":     {"请粘贴令牌。", "Paste a token."},
	"signin.expired":   {"登录已失效，请重新登录。", "Your sign-in is no longer valid; sign in again."},
	"signout.done":     {"已退出。", "Signed out."},
	"scopes":           {"权限", "Scopes"},
	"expires":          {"到期", "Expires"},

	"err.title":     {"出错了", "Something went wrong"},
	"err.csrf":      {"表单已过期或来源不明，请刷新页面后重试。", "The form expired or came from elsewhere; reload the page and try again."},
	"err.notfound":  {"页面不存在。", "No such page."},
	"err.signin":    {"此页面需要登录。", "This page needs a sign-in."},
	"err.api":       {"节点未能完成请求：%s", "The node could not complete the request: %s"},
	"err.forbidden": {"你的令牌不允许此操作：%s", "Your token does not allow this: %s"},
	"back":          {"返回", "Back"},
	"sep":           {"，", ", "},
	"colon":         {"：", ": "},

	"flash.saved":     {"记录已保存。", "The record was saved."},
	"flash.signedin":  {"已登录。", "Signed in."},
	"flash.signedout": {"已退出。", "Signed out."},
}

// tr returns the text of key in l; an unknown key is returned as it is.
func tr(l, key string) string {
	m, ok := messages[key]
	if !ok {
		return key
	}
	if l == langEN {
		return m[1]
	}
	return m[0]
}

// centreShort names the federation's centres briefly, for table columns.
var centreShort = map[string][2]string{
	"hq":      {"本部", "HQ"},
	"tianjin": {"天津", "Tianjin"},
	"hebei":   {"河北", "Hebei"},
	"xiongan": {"雄安", "Xiong'an"},
}

// industryName names an industry code in l, or returns the code.
func industryName(l, code string) string {
	if in, ok := schema.LookupIndustry(code); ok {
		if l == langEN {
			return in.EN
		}
		return in.ZH
	}
	return code
}

// ruleText translates a validation rule, or returns "" for rules without one.
func ruleText(l, rule string) string {
	if _, ok := messages["rule."+rule]; ok {
		return tr(l, "rule."+rule)
	}
	return ""
}
