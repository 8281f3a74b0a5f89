package modelarchive

import (
	"errors"
	"fmt"
)

// Limits bound what an upload may unpack to. Every field must be positive.
type Limits struct {
	// MaxArchiveBytes bounds the upload itself (the compressed bytes read).
	// A zip is spooled to disk first, so it may use MaxArchiveBytes plus
	// MaxTotalBytes of disk while it is extracted.
	MaxArchiveBytes int64
	// MaxFiles bounds the number of entries, files and directories alike.
	MaxFiles int
	// MaxFileBytes bounds the size of one unpacked file.
	MaxFileBytes int64
	// MaxTotalBytes bounds the sum of the unpacked file sizes.
	MaxTotalBytes int64
	// MaxRatio bounds unpacked bytes per compressed byte read: for tar and
	// tar.gz over the whole stream, for zip per entry. It is enforced only
	// once ratioFloor bytes have been written, so that small, highly
	// compressible files (configs, labels) are not refused.
	MaxRatio int64
	// MaxDepth bounds the number of path components of an entry name,
	// counting a wrapping top-level directory.
	MaxDepth int
}

// DefaultLimits are generous enough for large ONNX models with external data
// and tight enough that an upload cannot fill the disk or the inode table.
func DefaultLimits() Limits {
	return Limits{
		MaxArchiveBytes: 16 << 30,
		MaxFiles:        10_000,
		MaxFileBytes:    8 << 30,
		MaxTotalBytes:   16 << 30,
		MaxRatio:        200,
		MaxDepth:        16,
	}
}

// Validate reports every invalid field at once.
func (l Limits) Validate() error {
	var errs []error
	check := func(name string, v int64) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %d", name, v))
		}
	}
	check("MaxArchiveBytes", l.MaxArchiveBytes)
	check("MaxFiles", int64(l.MaxFiles))
	check("MaxFileBytes", l.MaxFileBytes)
	check("MaxTotalBytes", l.MaxTotalBytes)
	check("MaxRatio", l.MaxRatio)
	check("MaxDepth", int64(l.MaxDepth))
	if l.MaxDepth > maxNameBytes/2 {
		errs = append(errs, fmt.Errorf("MaxDepth must be at most %d, got %d", maxNameBytes/2, l.MaxDepth))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid archive limits: %w", err)
	}
	return nil
}
