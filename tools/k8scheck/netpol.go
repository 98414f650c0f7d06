package k8scheck

import (
	"fmt"
	"net"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Endpoint is one side of a connection: a pod (namespace and labels) or an
// address outside the cluster.
type Endpoint struct {
	Name            string
	Namespace       string
	NamespaceLabels map[string]string
	PodLabels       map[string]string
	// IP is set for addresses outside the cluster (the database, the
	// internet); such endpoints have no pod labels.
	IP net.IP
}

// IsPod reports whether e is a pod.
func (e Endpoint) IsPod() bool { return e.IP == nil }

// NetworkPolicies evaluates Kubernetes NetworkPolicy semantics for the
// policies of one namespace: a connection is allowed when the source's
// egress policies (if any select it) and the destination's ingress policies
// (if any select it) both allow it.
type NetworkPolicies struct {
	Namespace string
	Policies  []networkingv1.NetworkPolicy
}

// Allowed reports whether src may open a connection to dst on port/proto,
// with the reason when it may not.
func (n NetworkPolicies) Allowed(src, dst Endpoint, port int32, proto corev1.Protocol) (bool, string, error) {
	if src.IsPod() && src.Namespace == n.Namespace {
		ok, err := n.side(src, dst, port, proto, networkingv1.PolicyTypeEgress)
		if err != nil || !ok {
			return false, "egress of " + src.Name + " denies it", err
		}
	}
	if dst.IsPod() && dst.Namespace == n.Namespace {
		ok, err := n.side(dst, src, port, proto, networkingv1.PolicyTypeIngress)
		if err != nil || !ok {
			return false, "ingress of " + dst.Name + " denies it", err
		}
	}
	return true, "", nil
}

// Selecting returns the policies whose podSelector selects pod.
func (n NetworkPolicies) Selecting(pod Endpoint) ([]networkingv1.NetworkPolicy, error) {
	var out []networkingv1.NetworkPolicy
	for _, p := range n.Policies {
		sel, err := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector)
		if err != nil {
			return nil, fmt.Errorf("NetworkPolicy %s: %v", p.Name, err)
		}
		if sel.Matches(labels.Set(pod.PodLabels)) {
			out = append(out, p)
		}
	}
	return out, nil
}

// side evaluates the policies of self (egress: self is the source, peer the
// destination; ingress: the other way round).
func (n NetworkPolicies) side(self, peer Endpoint, port int32, proto corev1.Protocol, dir networkingv1.PolicyType) (bool, error) {
	pols, err := n.Selecting(self)
	if err != nil {
		return false, err
	}
	applies := false
	for _, p := range pols {
		if !hasType(p, dir) {
			continue
		}
		applies = true
		if dir == networkingv1.PolicyTypeEgress {
			for _, r := range p.Spec.Egress {
				ok, err := n.ruleMatches(r.To, r.Ports, peer, port, proto)
				if err != nil || ok {
					return ok, err
				}
			}
		} else {
			for _, r := range p.Spec.Ingress {
				ok, err := n.ruleMatches(r.From, r.Ports, peer, port, proto)
				if err != nil || ok {
					return ok, err
				}
			}
		}
	}
	return !applies, nil
}

func hasType(p networkingv1.NetworkPolicy, t networkingv1.PolicyType) bool {
	types := p.Spec.PolicyTypes
	if len(types) == 0 {
		// The API's default: Ingress, plus Egress when egress rules exist.
		types = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		if len(p.Spec.Egress) > 0 {
			types = append(types, networkingv1.PolicyTypeEgress)
		}
	}
	for _, x := range types {
		if x == t {
			return true
		}
	}
	return false
}

func (n NetworkPolicies) ruleMatches(peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort, peer Endpoint, port int32, proto corev1.Protocol) (bool, error) {
	portOK := len(ports) == 0
	for _, p := range ports {
		pp := corev1.ProtocolTCP
		if p.Protocol != nil {
			pp = *p.Protocol
		}
		if pp != proto {
			continue
		}
		if p.Port == nil {
			portOK = true
			break
		}
		if p.Port.StrVal != "" {
			return false, fmt.Errorf("named port %q: the checks only understand numeric ports", p.Port.StrVal)
		}
		lo, hi := p.Port.IntVal, p.Port.IntVal
		if p.EndPort != nil {
			hi = *p.EndPort
		}
		if port >= lo && port <= hi {
			portOK = true
			break
		}
	}
	if !portOK {
		return false, nil
	}
	if len(peers) == 0 {
		return true, nil
	}
	for _, pr := range peers {
		ok, err := n.peerMatches(pr, peer)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

func (n NetworkPolicies) peerMatches(pr networkingv1.NetworkPolicyPeer, e Endpoint) (bool, error) {
	if pr.IPBlock != nil {
		if e.IsPod() {
			// Pod IPs are not modelled; the manifests use ipBlock only for
			// addresses outside the cluster.
			return false, nil
		}
		_, cidr, err := net.ParseCIDR(pr.IPBlock.CIDR)
		if err != nil {
			return false, err
		}
		if !cidr.Contains(e.IP) {
			return false, nil
		}
		for _, ex := range pr.IPBlock.Except {
			_, c, err := net.ParseCIDR(ex)
			if err != nil {
				return false, err
			}
			if c.Contains(e.IP) {
				return false, nil
			}
		}
		return true, nil
	}
	if !e.IsPod() {
		return false, nil
	}
	if pr.NamespaceSelector == nil {
		if e.Namespace != n.Namespace {
			return false, nil
		}
	} else {
		sel, err := metav1.LabelSelectorAsSelector(pr.NamespaceSelector)
		if err != nil {
			return false, err
		}
		if !sel.Matches(labels.Set(e.NamespaceLabels)) {
			return false, nil
		}
	}
	if pr.PodSelector == nil {
		return true, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(pr.PodSelector)
	if err != nil {
		return false, err
	}
	return sel.Matches(labels.Set(e.PodLabels)), nil
}
