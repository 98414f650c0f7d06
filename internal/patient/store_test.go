package patient

import (
	"slices"
	"strings"
	"testing"
)

func TestNameSplits(t *testing.T) {
	families, givens := NameSplits(strings.Fields("naomi van der berg"))
	want := [][2]string{{"naomi van der berg", ""}, {"van der berg", "naomi"}, {"naomi", "van der berg"},
		{"der berg", "naomi van"}, {"naomi van", "der berg"}, {"berg", "naomi van der"}, {"naomi van der", "berg"}}
	if len(families) != len(want) || len(givens) != len(want) {
		t.Fatalf("got %q / %q", families, givens)
	}
	for i, w := range want {
		if families[i] != w[0] || givens[i] != w[1] {
			t.Errorf("split %d: family %q given %q, want %q", i, families[i], givens[i], w)
		}
	}
	// Long queries are cut at eight words.
	families, _ = NameSplits(strings.Fields("a b c d e f g h i j k"))
	if len(families) != 1+2*7 || slices.Contains(families, "i") {
		t.Errorf("eleven words: %d splits %q", len(families), families)
	}
}
