package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/octoserve/octoserve/internal/reference"
)

// TestListReferrersPages checks the page bounds: a page stops at MaxCount
// descriptors or before the one that would pass MaxBytes, holds at least
// one even when that one alone is larger, and the pages together hold
// every referrer once, in digest order, with an artifactType filter too.
func TestListReferrersPages(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t, t.TempDir())
	subject := reference.FromBytes("sha256", []byte("subject"))
	var all []string
	for i := 0; i < 9; i++ {
		body := []byte(fmt.Sprintf(`{"n":%d}`, i))
		d := reference.FromBytes("sha256", body)
		size := 10
		if i%3 == 0 {
			size = 3000 // larger than a whole page below
		}
		mf := &manifestFields{
			ArtifactType: []string{"a/x", "a/y"}[i%2],
			Subject:      &Descriptor{Digest: subject.String()},
			Annotations:  map[string]string{"pad": strings.Repeat("p", size)},
		}
		if err := reg.putReferrer(ctx, "r", d, MediaTypeOCIManifest, int64(len(body)), mf); err != nil {
			t.Fatal(err)
		}
		all = append(all, d.String())
	}
	for _, tc := range []struct {
		q        ReferrersQuery
		wantSize []int // descriptors per page
	}{
		{ReferrersQuery{MaxCount: 4, MaxBytes: 1 << 20}, []int{4, 4, 1}},
		{ReferrersQuery{MaxCount: 100, MaxBytes: 1000}, nil}, // sizes depend on the digest order
		{ReferrersQuery{MaxCount: 1, MaxBytes: 1 << 20}, []int{1, 1, 1, 1, 1, 1, 1, 1, 1}},
		{ReferrersQuery{MaxCount: 2, MaxBytes: 1 << 20, ArtifactType: "a/x"}, []int{2, 2, 1}},
	} {
		q := tc.q
		var got []string
		var sizes []int
		for {
			page, err := reg.ListReferrers(ctx, "r", subject, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Descriptors) == 0 {
				t.Fatalf("%+v: empty page", tc.q)
			}
			bytes := 0
			for _, b := range page.Descriptors {
				var desc Descriptor
				if err := json.Unmarshal(b, &desc); err != nil {
					t.Fatal(err)
				}
				if tc.q.ArtifactType != "" && desc.ArtifactType != tc.q.ArtifactType {
					t.Fatalf("%+v: got artifactType %q", tc.q, desc.ArtifactType)
				}
				got = append(got, desc.Digest)
				bytes += len(b)
			}
			if len(page.Descriptors) > 1 && bytes > q.MaxBytes {
				t.Fatalf("%+v: page of %d descriptors holds %d bytes", tc.q, len(page.Descriptors), bytes)
			}
			sizes = append(sizes, len(page.Descriptors))
			if page.Next == "" {
				break
			}
			q.After = page.Next
		}
		want := 9
		if tc.q.ArtifactType != "" {
			want = 5
		}
		if len(got) != want {
			t.Fatalf("%+v: %d referrers, want %d", tc.q, len(got), want)
		}
		for i := 1; i < len(got); i++ {
			if got[i] <= got[i-1] {
				t.Fatalf("%+v: not in digest order or repeated: %v", tc.q, got)
			}
		}
		if tc.q.ArtifactType == "" && fmt.Sprint(got) != fmt.Sprint(sorted(all)) {
			t.Fatalf("%+v: referrers %v, want %v", tc.q, got, all)
		}
		if tc.wantSize != nil && fmt.Sprint(sizes) != fmt.Sprint(tc.wantSize) {
			t.Fatalf("%+v: pages of %v, want %v", tc.q, sizes, tc.wantSize)
		}
	}
	// Housekeeping still sees every referrer, without annotations.
	refs, err := reg.Referrers(ctx, "r", subject, "")
	if err != nil || len(refs) != 9 || refs[0].Annotations != nil {
		t.Fatalf("Referrers: %d, %v", len(refs), err)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
