package registry

import (
	"context"
	"sync"

	"github.com/rampart-ml/rampart/internal/store"
)

// blobRefs closes the race between one upload's cleanup and another's
// commit. Blobs are content-addressed, so two uploads of a domain may
// store the same blob; between its Put and its commit an upload's
// reference is invisible to the database, and a cleanup that counted
// references then would delete a blob the other upload is about to
// commit.
//
// The rule, which makes it provable: a blob of a domain is deleted only
// under mu while no upload of that domain is between begin (before its
// first Put) and end (after its commit or rollback). Any upload that Put
// the blob has then either committed its row (so the count keeps the
// blob) or not begun (so its Put comes after the deletion and stores the
// blob again). Deletions wait, never uploads: a failed upload's blobs are
// queued until the domain is idle.
type blobRefs struct {
	mu      sync.Mutex
	active  map[string]int                 // domain → uploads holding uncommitted blobs
	pending map[string]map[string]struct{} // domain → digests to drop once idle
	drop    func(ctx context.Context, domain, digest string)
}

func newBlobRefs(drop func(ctx context.Context, domain, digest string)) *blobRefs {
	return &blobRefs{active: map[string]int{}, pending: map[string]map[string]struct{}{}, drop: drop}
}

// begin is called before an upload's first Put in domain.
func (g *blobRefs) begin(domain string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.active[domain]++
}

// end is called once the upload committed (unreferenced nil) or rolled
// back (unreferenced: the files it stored). The last upload of a domain
// to end drops the queued blobs that no version references.
func (g *blobRefs) end(ctx context.Context, domain string, unreferenced []store.ModelFile) {
	ctx = context.WithoutCancel(ctx) // cleanup outlives a cancelled request
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(unreferenced) > 0 && g.pending[domain] == nil {
		g.pending[domain] = map[string]struct{}{}
	}
	for _, f := range unreferenced {
		g.pending[domain][f.Digest] = struct{}{}
	}
	if g.active[domain]--; g.active[domain] > 0 {
		return
	}
	delete(g.active, domain)
	queued := g.pending[domain]
	delete(g.pending, domain)
	// Still under mu: no upload can begin, hence Put, while a blob is
	// counted and deleted.
	for digest := range queued {
		g.drop(ctx, domain, digest)
	}
}
