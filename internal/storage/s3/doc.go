// Package s3 implements storage.Driver over a bucket of an S3-compatible
// object store, through aws-sdk-go-v2 (no signing of its own).
//
// # What the service must give
//
// The contract in storage.go holds only on a service that has:
//   - strong read-after-write and list-after-write consistency (AWS S3
//     since December 2020, MinIO, Ceph RGW, versitygw);
//   - conditional writes: If-None-Match: * and If-Match: <etag> on
//     PutObject and CompleteMultipartUpload, evaluated atomically with the
//     write (AWS S3 since August/November 2024, MinIO, Ceph RGW (Squid),
//     versitygw 1.8). A service without them would accept both of two
//     concurrent creates; New cannot detect that, so check before use;
//   - UploadPartCopy and CopyObject with x-amz-copy-source-if-match.
//
// # How each guarantee is met
//
// Durability: a PutObject, CopyObject or CompleteMultipartUpload that
// returned success is durable by S3's own semantics (on versitygw's posix
// backend, as durable as its filesystem makes a rename: it does not
// fsync). Atomicity: every write publishes the whole object at once; a
// Writer buffers one part (Config.PartSize, from a pool) and sends a
// single PutObject when the object fits in it, a multipart upload
// otherwise, which is invisible until CompleteMultipartUpload and is
// aborted by Cancel or a failed Commit.
//
// Versions (GetVersioned, PutIf) are ETags, compared by the service with
// If-Match, and Create is If-None-Match: *. An S3 ETag is a digest of the
// bytes (MD5 for a PutObject), so writing identical bytes again keeps the
// version: a PutIf at the old version then still succeeds. The stored
// content is then byte for byte what the caller read, but a caller that
// must see every rewrite as a change (a lease renewed by rewriting it)
// must write bytes that differ (a counter, a time).
//
// Every write carries a random token in its metadata
// (x-amz-meta-octoserve-write), so that a conditional write the SDK
// retried after a lost response, which then fails its own condition, is
// recognised as having landed and reported as a success.
//
// Times: ModTime is the service's Last-Modified, truncated to whole
// seconds everywhere (HEAD gives seconds, LIST milliseconds: one
// resolution for both, so that comparing a listed time with a HEAD time
// cannot make a later write look older). On AWS S3 the Last-Modified of a
// multipart object is when its upload was initiated (the first full part
// of a Writer), not when it was completed: an object committed after
// another may then carry an earlier time, by up to the duration of its
// upload. Anything judging age from ModTime must allow for that margin.
//
// Listing: List uses ListObjectsV2 with delimiter "/" and merges objects
// and common prefixes into byte order of names. S3 orders a prefix "a" as
// "a/", after "a-b" and "a.b"; a page with a limit therefore also checks,
// with one small LIST each, the prefixes that could sort before the last
// name on the page. Walk lists without a delimiter, which is byte order
// of the whole paths. Keys ending in "/" (folder markers made by consoles)
// are not objects here and are skipped.
package s3
