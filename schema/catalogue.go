package schema

import (
	"encoding/json"
	"fmt"
)

// The catalogue bodies. Their JSON member names are a contract with partner systems:
// fields may be added, never renamed. Record.Body holds the raw JSON, so members this
// build does not know survive storage and relay; these types are for code that reads
// or builds bodies (matching, import, the demo), not for storage.

// SupplyBody is the body of a supply record (科技成果供给清单): a technology or research
// result offered for transfer.
type SupplyBody struct {
	Title    string   `json:"title"`
	Summary  string   `json:"summary"`
	Industry string   `json:"industry"`
	Keywords []string `json:"keywords,omitempty"`
	// TRL is the technology readiness level, 1–9; 0 means not stated.
	TRL           int       `json:"trl,omitempty"`
	IP            []IPRight `json:"ip,omitempty"`
	TransferModes []string  `json:"transfer_modes,omitempty"`
	OwnerOrg      string    `json:"owner_org,omitempty"`
	Disruptive    bool      `json:"disruptive"`
	// Inventors are personal data: stripped before the record leaves its origin.
	Inventors []string `json:"inventors,omitempty"`
	// Contact is personal data: stripped before the record leaves its origin.
	Contact *Contact `json:"contact,omitempty"`
}

// IPRight is one intellectual-property right behind a supply item.
type IPRight struct {
	// Type is free text such as "patent", "utility-model", "software-copyright",
	// "know-how".
	Type   string `json:"type"`
	Number string `json:"number,omitempty"` // e.g. "ZL202110345678.9"
	Status string `json:"status,omitempty"` // one of IPStatuses
}

// NeedBody is the body of a need record (产业技术需求清单): an enterprise's technical
// need, or a challenge call (揭榜挂帅) when Kind is NeedKindChallenge.
type NeedBody struct {
	Title       string   `json:"title"`
	Description string   `json:"description"`
	Industry    string   `json:"industry"`
	Keywords    []string `json:"keywords,omitempty"`
	Enterprise  string   `json:"enterprise"`
	Budget      *Budget  `json:"budget,omitempty"`
	// Deadline is a date, "YYYY-MM-DD"; required for challenges.
	Deadline string `json:"deadline,omitempty"`
	Status   string `json:"status,omitempty"` // one of NeedStatuses; absent means open
	Kind     string `json:"kind,omitempty"`   // one of NeedKinds; absent means need
	// Challenge is required when Kind is NeedKindChallenge and refused otherwise.
	Challenge *Challenge `json:"challenge,omitempty"`
	Contact   *Contact   `json:"contact,omitempty"`
}

// Budget is a need's budget range, in units of Currency (an ISO 4217 code such as
// "CNY"). Min must not exceed Max.
type Budget struct {
	Min      float64 `json:"min,omitempty"`
	Max      float64 `json:"max,omitempty"`
	Currency string  `json:"currency,omitempty"`
}

// Challenge holds the terms of a challenge call (揭榜挂帅).
type Challenge struct {
	Bounty    float64  `json:"bounty,omitempty"` // in the budget's currency
	Targets   []string `json:"targets"`          // measurable goals, at least one
	MaxMonths int      `json:"max_months,omitempty"`
}

// ExpertBody is the body of an expert record (专家库).
type ExpertBody struct {
	Name        string   `json:"name"`
	Title       string   `json:"title,omitempty"` // professional title, e.g. 教授
	Affiliation string   `json:"affiliation"`
	Fields      []string `json:"fields,omitempty"` // industry codes
	Keywords    []string `json:"keywords,omitempty"`
	Bio         string   `json:"bio,omitempty"`
	Roles       []string `json:"roles,omitempty"` // ExpertRoles
	Contact     *Contact `json:"contact,omitempty"`
}

// Contact is a person to contact. It is personal data (PIPL): it never leaves the
// origin centre, and at the origin only tokens with the pii scope see it.
type Contact struct {
	Person string `json:"person,omitempty"`
	Phone  string `json:"phone,omitempty"`
	Email  string `json:"email,omitempty"`
}

// Supply transfer modes.
const (
	TransferLicense          = "license"
	TransferAssignment       = "assignment"
	TransferJointDevelopment = "joint-development"
	TransferEquity           = "equity"
	TransferService          = "service"
)

// TransferModes lists the transfer modes a supply item may offer.
var TransferModes = []string{TransferLicense, TransferAssignment, TransferJointDevelopment, TransferEquity, TransferService}

// Statuses of an IP right.
const (
	IPPending = "pending" // filed, not yet granted (申请中)
	IPGranted = "granted" // 已授权
	IPLapsed  = "lapsed"  // fees unpaid or invalidated (已失效)
	IPExpired = "expired" // term ended (已届满)
)

// IPStatuses lists the statuses of an IP right.
var IPStatuses = []string{IPPending, IPGranted, IPLapsed, IPExpired}

// Need statuses.
const (
	NeedOpen    = "open"
	NeedMatched = "matched"
	NeedClosed  = "closed"
)

// NeedStatuses lists the statuses of a need.
var NeedStatuses = []string{NeedOpen, NeedMatched, NeedClosed}

// Need kinds.
const (
	NeedKindNeed      = "need"
	NeedKindChallenge = "challenge" // 揭榜挂帅
)

// NeedKinds lists the kinds of need.
var NeedKinds = []string{NeedKindNeed, NeedKindChallenge}

// Expert roles.
const (
	RoleEvaluation = "evaluation" // 评审/评价
	RoleConsulting = "consulting" // 咨询
	RoleReview     = "review"     // 论证
)

// ExpertRoles lists the roles an expert may take.
var ExpertRoles = []string{RoleEvaluation, RoleConsulting, RoleReview}

// Industry is one field of Tianjin's "1+3+4" industrial system.
type Industry struct {
	Code   string `json:"code"`
	ZH     string `json:"zh"`
	EN     string `json:"en"`
	Parent string `json:"parent,omitempty"` // code of the broader field, if any
}

// Industries lists the industry codes this build knows. A record from another centre
// may carry a code added after this build; it is kept as it is (see ValidateOptions).
var Industries = []Industry{
	{Code: "intelligent-tech", ZH: "智能科技", EN: "Intelligent technology"},
	{Code: "it-innovation", ZH: "信创", EN: "IT application innovation", Parent: "intelligent-tech"},
	{Code: "biomedicine", ZH: "生物医药", EN: "Biomedicine"},
	{Code: "new-energy", ZH: "新能源", EN: "New energy"},
	{Code: "new-materials", ZH: "新材料", EN: "New materials"},
	{Code: "aerospace", ZH: "航空航天", EN: "Aerospace"},
	{Code: "high-end-equipment", ZH: "高端装备", EN: "High-end equipment"},
	{Code: "automotive", ZH: "汽车", EN: "Automotive"},
	{Code: "green-petrochemicals", ZH: "绿色石化", EN: "Green petrochemicals"},
	{Code: "other", ZH: "其他", EN: "Other"},
}

// LookupIndustry returns the industry with the given code.
func LookupIndustry(code string) (Industry, bool) {
	for _, in := range Industries {
		if in.Code == code {
			return in, true
		}
	}
	return Industry{}, false
}

// KnownCatalogue reports whether this build knows the catalogue.
func KnownCatalogue(name string) bool {
	for _, c := range Catalogues {
		if c == name {
			return true
		}
	}
	return false
}

// DecodeBody decodes r.Body into the catalogue's body type: *SupplyBody, *NeedBody or
// *ExpertBody. Members the type does not have are ignored. It does not validate.
func DecodeBody(r *Record) (any, error) {
	var v any
	switch r.Catalogue {
	case CatalogueSupply:
		v = new(SupplyBody)
	case CatalogueNeed:
		v = new(NeedBody)
	case CatalogueExpert:
		v = new(ExpertBody)
	default:
		return nil, fmt.Errorf("decode body of %s: %w %q", r.ID, ErrUnknownCatalogue, r.Catalogue)
	}
	if err := json.Unmarshal(r.Body, v); err != nil {
		return nil, fmt.Errorf("decode %s body of %s: %w", r.Catalogue, r.ID, err)
	}
	return v, nil
}
