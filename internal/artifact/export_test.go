package artifact

import (
	"io"
	"os"
)

// BlobPath exposes the layout to the tests that play the attacker.
func BlobPath(s *FS, domain, digest string) (string, error) { return s.blobPath(domain, digest) }

// PlaintextSize exposes the age size computation to the fuzz target.
var PlaintextSize = plaintextSize

// FailWritesAfter makes every later Put's temporary file accept n bytes
// and then fail with err, as a full disk does.
func FailWritesAfter(s *FS, n int64, err error) {
	s.createTemp = func(dir string) (tempFile, error) {
		f, cerr := os.CreateTemp(dir, "put-*")
		if cerr != nil {
			return nil, cerr
		}
		return &limitedFile{File: f, left: n, err: err}, nil
	}
}

type limitedFile struct {
	*os.File
	left int64
	err  error
}

func (l *limitedFile) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		n, _ := l.File.Write(p[:l.left])
		l.left = 0
		return n, l.err
	}
	l.left -= int64(len(p))
	return l.File.Write(p)
}

var _ io.Writer = (*limitedFile)(nil)

// EncryptTo exposes Put's hash+encrypt pipeline to the benchmarks, to
// measure it apart from the disk.
var EncryptTo = encryptTo
