package classify

import (
	"cmp"
	"slices"
)

// decision is the outcome of the precedence rule.
type decision struct {
	typ        Type
	confidence float64
	reasons    []string
	clinical   bool
}

// score is the combined weight of a type's findings: independent pieces of evidence
// reinforce each other (1 - the product of their complements), never reaching 1.
type score struct {
	value float64
}

// scoreSet holds the scores of the few types a host has evidence for.
type scoreSet struct {
	types  []Type
	scores []score
}

// get returns t's score, or nil when there is no evidence for t.
func (ss *scoreSet) get(t Type) *score {
	for i, x := range ss.types {
		if x == t {
			return &ss.scores[i]
		}
	}
	return nil
}

// of returns t's score, adding an empty one when needed.
func (ss *scoreSet) of(t Type) *score {
	if s := ss.get(t); s != nil {
		return s
	}
	ss.types = append(ss.types, t)
	ss.scores = append(ss.scores, score{})
	return &ss.scores[len(ss.scores)-1]
}

func (s *score) add(f finding) {
	s.value = 1 - (1-s.value)*(1-f.weight)
}

// applianceOrder is the appliance precedence, used to break ties.
var applianceOrder = []Type{Firewall, VPNGateway, Router, NetworkSwitch, WirelessAP, UPS,
	Printer, IPPhone, IPCamera, NASStorage, Hypervisor}

// decide applies the precedence: clinical, appliance, directory, role, OS, unknown.
func decide(e *evidence) decision {
	scores := &e.scores
	scores.types, scores.scores = scores.types[:0], scores.scores[:0]
	for _, f := range e.findings {
		scores.of(f.typ).add(f)
	}

	for _, step := range steps {
		if d, ok := step(e, scores); ok {
			d.reasons = append(d.reasons, outranked(e, d.typ, d.reasons)...)
			return d
		}
	}
	return decideUnknown(e)
}

// steps are the levels of the precedence, most specific first.
var steps = []func(*evidence, *scoreSet) (decision, bool){
	decideClinical, decideAppliance, decideDirectory, decideRole, decideOS,
}

// decideClinical turns any clinical evidence into a clinical type.
func decideClinical(e *evidence, scores *scoreSet) (decision, bool) {
	get := func(t Type) *score {
		if s := scores.get(t); s != nil {
			return s
		}
		return &score{}
	}
	pacs, ehr, engine := get(PACSServer), get(EHRServer), get(HL7InterfaceEngine)
	dicom, medical, viewer := get(sigDICOM), get(sigMedical), get(sigViewer)
	engineNamed := false
	for _, f := range e.findings {
		if f.typ == HL7InterfaceEngine && !f.generic {
			engineNamed = true
		}
	}

	pick := func(t Type, parts ...Type) (decision, bool) {
		var all score
		for _, f := range e.findings {
			if slices.Contains(parts, f.typ) {
				all.add(f)
			}
		}
		return decision{typ: t, confidence: all.value, reasons: reasonsOf(e, parts...),
			clinical: true}, true
	}

	switch {
	case pacs.value > 0 && pacs.value >= ehr.value && pacs.value >= engine.value:
		return pick(PACSServer, PACSServer, sigDICOM, sigViewer)
	case ehr.value > 0 && ehr.value >= engine.value:
		return pick(EHRServer, EHRServer)
	case engineNamed:
		return pick(HL7InterfaceEngine, HL7InterfaceEngine)
	case dicom.value > 0 && medical.value == 0 && viewer.value > 0:
		// A DICOM host that also presents an image viewer or archive stores images.
		return pick(PACSServer, sigDICOM, sigViewer)
	case dicom.value > 0 && medical.value == 0 && engine.value > 0 && serverOS(e):
		// A server taking both DICOM and HL7 is an imaging system's back end.
		return pick(PACSServer, sigDICOM, HL7InterfaceEngine)
	case dicom.value > 0:
		return pick(DICOMModality, sigDICOM, sigMedical)
	case medical.value > 0:
		return pick(MedicalDevice, sigMedical, HL7InterfaceEngine)
	case engine.value > 0:
		return pick(HL7InterfaceEngine, HL7InterfaceEngine)
	}
	return decision{}, false
}

// decideAppliance picks the strongest appliance evidence above the threshold.
func decideAppliance(e *evidence, scores *scoreSet) (decision, bool) {
	strong := func(t Type) bool { return scores.get(t) != nil && scores.get(t).value >= threshold }

	var best, second Type
	for _, t := range applianceOrder {
		if !strong(t) {
			continue
		}
		if t == VPNGateway && (strong(Firewall) || strong(Router)) {
			continue // a firewall or router terminating VPNs keeps its own type
		}
		switch {
		case best == "" || scores.get(t).value > scores.get(best).value:
			best, second = t, best
		case second == "" || scores.get(t).value > scores.get(second).value:
			second = t
		}
	}
	if best == "" {
		return decision{}, false
	}

	conf := scores.get(best).value
	if second != "" {
		conf *= 1 - scores.get(second).value/2
	}
	return decision{typ: best, confidence: conf, reasons: reasonsOf(e, best)},
		true
}

// decideDirectory finds a Windows host serving Kerberos and LDAP.
func decideDirectory(e *evidence, _ *scoreSet) (decision, bool) {
	if !e.kerberos || !e.ldap {
		return decision{}, false
	}
	switch {
	case e.os.family == osWindows:
		return decision{typ: DomainController, confidence: 0.9, reasons: []string{
			"Kerberos (88) and LDAP (389) are served by a Windows host",
			e.os.reason(),
		}}, true
	case e.activeDirectory:
		return decision{typ: DomainController, confidence: 0.85, reasons: []string{
			"Kerberos (88) and LDAP (389) are served and the LDAP service is Active Directory",
		}}, true
	}
	return decision{}, false
}

// decideRole finds a server whose listening services show its role.
func decideRole(e *evidence, scores *scoreSet) (decision, bool) {
	if s := scores.get(DatabaseServer); s != nil {
		return decision{typ: DatabaseServer, confidence: s.value,
			reasons: reasonsOf(e, DatabaseServer)}, true
	}
	s := scores.get(WebServer)
	if s == nil || !serverOS(e) {
		return decision{}, false
	}
	reasons := append(reasonsOf(e, WebServer), e.os.reason())
	return decision{typ: WebServer, confidence: s.value * (0.5 + e.os.weight/2),
		reasons: reasons}, true
}

// decideOS falls back on the operating system.
func decideOS(e *evidence, _ *scoreSet) (decision, bool) {
	o := &e.os
	if o.family == osUnknown || o.weight < 0.3 {
		return decision{}, false
	}
	reasons := []string{o.reason()}
	if o.editionReason != "" {
		reasons = append(reasons, o.editionReason)
	}
	client := func(why string, conf float64) (decision, bool) {
		return decision{typ: Workstation, confidence: conf * o.weight,
			reasons: append(reasons, why)}, true
	}
	server := func(t Type, why string, conf float64) (decision, bool) {
		if why != "" {
			reasons = append(reasons, why)
		}
		return decision{typ: t, confidence: conf * o.weight, reasons: reasons}, true
	}

	switch o.family {
	case osMac, osMobile:
		return client(o.family.String()+" is a client operating system", 0.95)
	case osWindows:
		switch {
		case o.edition == editionServer:
			return server(WindowsServer, "", 1)
		case o.edition == editionClient:
			return client("a client edition serving nothing of note", 0.95)
		case e.notable > 0 || e.virtual:
			return server(WindowsServer, "the edition is unknown but it serves "+
				e.notableWhat, 0.6)
		}
		return client("the edition is unknown and it serves nothing of note", 0.6)
	case osLinux, osUnix:
		if e.notable == 0 && !e.virtual {
			return client("nothing of note is served, as on a desktop", 0.55)
		}
		why := "it serves " + e.notableWhat + ", as a server does"
		if e.notable == 0 {
			why = "its network card is a virtual machine's, as a server's usually is"
		}
		if o.family == osUnix {
			why += "; a Unix-like server system, the closest type is linux_server"
		}
		return server(LinuxServer, why, 0.95)
	}
	return decision{}, false
}

func decideUnknown(e *evidence) decision {
	reasons := reasonsOf(e)
	if len(reasons) > 2 {
		reasons = reasons[:2]
	}
	for i, r := range reasons {
		reasons[i] = "too weak on its own: " + r
	}
	reasons = append([]string{"nothing seen identifies the device"}, reasons...)
	return decision{typ: Unknown, confidence: 0.2, reasons: reasons}
}

// serverOS reports whether the host runs a server operating system.
func serverOS(e *evidence) bool {
	switch e.os.family {
	case osLinux, osUnix:
		return true
	case osWindows:
		return e.os.edition != editionClient
	}
	return false
}

// reasonsOf returns the reasons of the findings for types (every finding when none is
// named), strongest first, without repeats.
func reasonsOf(e *evidence, types ...Type) []string {
	var buf [16]*finding
	picked := buf[:0]
	for i := range e.findings {
		if f := &e.findings[i]; len(types) == 0 || slices.Contains(types, f.typ) {
			picked = append(picked, f)
		}
	}
	slices.SortStableFunc(picked, func(a, b *finding) int { return cmp.Compare(b.weight, a.weight) })
	out := make([]string, 0, len(picked)+1)
	for _, f := range picked {
		if r := f.reason(); !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// outranked names the strongest evidence for another type that the winner took
// precedence over, so a technician sees what was set aside.
func outranked(e *evidence, winner Type, shown []string) []string {
	var buf [16]*finding
	cands := buf[:0]
	for i := range e.findings {
		f := &e.findings[i]
		if f.typ != winner && f.typ.Valid() && f.weight >= threshold {
			cands = append(cands, f)
		}
	}
	slices.SortStableFunc(cands, func(a, b *finding) int { return cmp.Compare(b.weight, a.weight) })
	for _, f := range cands {
		if r := f.reason(); !slices.Contains(shown, r) { // not already a winner's reason
			return []string{"outranked: " + r + " (points to " + string(f.typ) + ")"}
		}
	}
	return nil
}
