package api

import "testing"

func TestParseRoute(t *testing.T) {
	cases := []struct {
		path string
		want Route
		bad  bool
	}{
		{"/v2/", Route{Kind: KindBase}, false},
		{"/v2", Route{Kind: KindBase}, false},
		{"/v2/_catalog", Route{Kind: KindCatalog}, false},
		{"/v2/a/b/c/blobs/sha256:x", Route{Kind: KindBlob, Name: "a/b/c", Ref: "sha256:x"}, false},
		{"/v2/a/blobs/uploads/", Route{Kind: KindUpload, Name: "a"}, false},
		{"/v2/a/blobs/uploads", Route{Kind: KindUpload, Name: "a"}, false},
		{"/v2/a/blobs/uploads/id", Route{Kind: KindUpload, Name: "a", Ref: "id"}, false},
		{"/v2/blobs/blobs/uploads/id", Route{Kind: KindUpload, Name: "blobs", Ref: "id"}, false},
		{"/v2/manifests/manifests/latest", Route{Kind: KindManifest, Name: "manifests", Ref: "latest"}, false},
		{"/v2/x/tags/list", Route{Kind: KindTags, Name: "x"}, false},
		{"/v2/tags/list/tags/list", Route{Kind: KindTags, Name: "tags/list"}, false},
		{"/v2/x/referrers/sha256:y", Route{Kind: KindReferrers, Name: "x", Ref: "sha256:y"}, false},
		{"/v2/X/tags/list", Route{}, true},
		{"/v2/a/../tags/list", Route{}, true},
		{"/v2/tags/list", Route{}, true},
		{"/v3/a/tags/list", Route{}, true},
		{"/v2/a/unknown/x", Route{}, true},
	}
	for _, tc := range cases {
		got, err := ParseRoute(tc.path)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("ParseRoute(%q) = %+v, %v; want %+v bad=%v", tc.path, got, err, tc.want, tc.bad)
		}
		// KindOf agrees wherever ParseRoute accepts the path.
		if kind, ok := KindOf(tc.path); !tc.bad && (!ok || kind != tc.want.Kind) {
			t.Errorf("KindOf(%q) = %v, %v; want %v", tc.path, kind, ok, tc.want.Kind)
		}
	}
	// Judged by shape alone, an invalid name keeps its route's kind.
	if kind, ok := KindOf("/v2/X/tags/list"); !ok || kind != KindTags {
		t.Errorf("KindOf of an invalid name's tag list = %v, %v", kind, ok)
	}
}
