package registry

// Manifest media types octoserve validates. Others are refused: a registry
// cannot check references it does not understand.
const (
	MediaTypeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex       = "application/vnd.oci.image.index.v1+json"
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

func isIndex(mediaType string) bool {
	return mediaType == MediaTypeOCIIndex || mediaType == MediaTypeDockerList
}

func isImageManifest(mediaType string) bool {
	return mediaType == MediaTypeOCIManifest || mediaType == MediaTypeDockerManifest
}
