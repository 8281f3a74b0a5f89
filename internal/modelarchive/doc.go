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
// What callers (the registry) must do: give every upload a fresh
// destination inside a private staging directory on the same filesystem as
// the store, and empty that directory at startup (a process killed
// mid-upload cannot clean up after itself); bound the request body before
// Extract and map the sentinel errors to responses (limits → 413, names,
// types, duplicates and corrupt archives → 400 or 422, ctx errors → the
// client went away, anything else → 500: disk full arrives as a plain
// wrapped syscall error); run CheckFiles, then verify the signature over
// exactly Manifest.Files; fsync what it keeps (Extract does not, as the
// unpacked files are only a staging copy).
//
// Not handled: Unicode normalisation (NFC/NFD names that collide on macOS
// filesystems are both accepted), and data between or before zip entries
// that no directory record points to (it is never extracted, so it is
// ignored).
//
// The package never follows a link, never writes outside its destination, never
// trusts a size read from an archive header, and performs no network I/O.
package modelarchive
