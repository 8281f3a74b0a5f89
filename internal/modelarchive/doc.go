// Package modelarchive unpacks an uploaded model directory (tar, tar.gz or zip)
// into a fresh directory, safely and in constant memory, and decides whether
// the unpacked files are an acceptable ONNX model directory.
//
// Extract is the only way an upload reaches the disk: it refuses every entry
// that is not a regular file or a directory, every name that could escape or
// be ambiguous (absolute, "..", backslashes, control characters, case-folded
// duplicates), and every archive that grows beyond its Limits (files, bytes,
// depth, compression ratio), counting the bytes it actually reads and writes
// rather than trusting headers. All files are created through an os.Root, so
// even a mistake in the name checks cannot write outside the destination. On
// any error the destination and the zip spool file are removed: a failed
// upload leaves nothing behind.
//
// CheckFiles applies the file-type policy: ONNX and its companion files only;
// formats that execute code when loaded (pickle, PyTorch, joblib, Keras/HDF5,
// TensorFlow SavedModel, scripts, native libraries) are refused by name and by
// content.
//
// The package never follows a link, never writes outside its destination, never
// trusts a size read from an archive header, and performs no network I/O.
package modelarchive
