package modelarchive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path"
	"strings"
)

// ContentKind is what a file's first bytes say it is, whatever its name.
type ContentKind string

// The content kinds Sniff recognises; "" is anything else.
const (
	ContentPickle  ContentKind = "pickle"         // Python pickle, protocol 2–5
	ContentPyTorch ContentKind = "pytorch"        // zip holding data.pkl (torch.save)
	ContentZip     ContentKind = "zip"            // another zip archive (e.g. Keras .keras)
	ContentGzip    ContentKind = "gzip"           // a compressed archive inside the model
	ContentHDF5    ContentKind = "hdf5"           // Keras .h5
	ContentNumpy   ContentKind = "numpy"          // .npy, may hold pickled objects
	ContentELF     ContentKind = "elf-executable" // native code
	ContentPE      ContentKind = "pe-executable"  // native code (Windows)
	ContentScript  ContentKind = "script"         // #! interpreter line
)

const sniffBytes = 512

// pickleFirstOps are the opcodes a pickler writes right after the PROTO
// header: FRAME (protocol 4+), or for protocol 2/3 the start of the object
// (EMPTY_DICT/LIST/TUPLE, MARK, GLOBAL, LONG1 for torch's legacy magic, …).
// Requiring one of them keeps raw weight files that happen to start with
// 0x80 0x02 (two float16 values, say) from being refused.
var pickleFirstOps = []byte("\x95}])(cq\x8a\x8cKJMX\x93NTU\x88\x89")

// Sniff classifies content by its first bytes (up to 512 are used).
func Sniff(head []byte) ContentKind {
	switch {
	case len(head) >= 3 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5 &&
		bytes.IndexByte(pickleFirstOps, head[2]) >= 0:
		return ContentPickle
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		// torch.save writes a zip whose first entry is <name>/data.pkl.
		if len(head) >= 30 {
			n := int(binary.LittleEndian.Uint16(head[26:]))
			if name := head[30:min(len(head), 30+n)]; bytes.HasSuffix(name, []byte("data.pkl")) || bytes.Contains(name, []byte(".pkl")) {
				return ContentPyTorch
			}
		}
		if bytes.Contains(head, []byte("data.pkl")) {
			return ContentPyTorch
		}
		return ContentZip
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return ContentGzip
	case bytes.HasPrefix(head, []byte("\x89HDF\r\n\x1a\n")):
		return ContentHDF5
	case bytes.HasPrefix(head, []byte("\x93NUMPY")):
		return ContentNumpy
	case bytes.HasPrefix(head, []byte("\x7fELF")):
		return ContentELF
	case isPE(head):
		return ContentPE
	case bytes.HasPrefix(head, []byte("#!")):
		return ContentScript
	}
	return ""
}

// isPE checks the "MZ" header and the "PE" signature it points to, so that
// a weight file starting with "MZ" by chance is not mistaken for one.
func isPE(head []byte) bool {
	if len(head) < 64 || !bytes.HasPrefix(head, []byte("MZ")) {
		return false
	}
	off := int(binary.LittleEndian.Uint32(head[0x3c:]))
	return off >= 0 && off <= len(head)-4 && bytes.Equal(head[off:off+4], []byte("PE\x00\x00"))
}

// codeExecutingExt are extensions of formats that run code when loaded or
// are code: refused with ErrCodeExecutingFormat.
var codeExecutingExt = map[string]string{
	".pt": "PyTorch (pickle)", ".pth": "PyTorch (pickle)", ".pkl": "pickle", ".pickle": "pickle",
	".joblib": "joblib (pickle)", ".ckpt": "checkpoint (pickle)",
	".npy": "NumPy (may hold pickled objects)", ".npz": "NumPy (may hold pickled objects)",
	".h5": "Keras/HDF5 (Lambda layers)", ".hdf5": "Keras/HDF5 (Lambda layers)", ".keras": "Keras (Lambda layers)",
	".pb": "TensorFlow SavedModel", ".pbtxt": "TensorFlow graph",
	".py": "Python", ".pyc": "Python bytecode", ".ipynb": "notebook",
	".so": "native library", ".dll": "native library", ".dylib": "native library",
	".exe": "executable", ".sh": "shell script", ".bat": "script", ".cmd": "script", ".ps1": "script",
}

// companionExt are the allowed companion files besides .onnx.
var companionExt = map[string]bool{
	".onnx_data": true, ".data": true, ".bin": true, ".weights": true, // external tensor data
	".json": true, ".yaml": true, ".yml": true, ".txt": true, // configs, labels
	".md": true, // model card
}

// bareNames are the allowed files without an extension.
var bareNames = map[string]bool{"LICENSE": true, "README": true}

// SignatureFile is the name of the OpenSSF model-signing bundle.
const SignatureFile = "model.sig"

// CheckFiles applies the model-directory file-type policy to an extracted
// manifest and reports every refused file at once (errors.Join of
// *EntryError), then whether exactly one .onnx file is the model.
func CheckFiles(m Manifest) error {
	var errs []error
	for _, f := range m.Files {
		if err := checkFile(f); err != nil {
			errs = append(errs, entryErr(f.Path, err))
		}
	}
	if _, err := ModelFile(m); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func checkFile(f File) error {
	switch f.Content {
	case ContentPickle, ContentPyTorch, ContentHDF5, ContentNumpy, ContentELF, ContentPE, ContentScript:
		return fmt.Errorf("%w: content is %s", ErrCodeExecutingFormat, f.Content)
	case ContentZip, ContentGzip:
		return fmt.Errorf("%w: content is a %s archive inside the model directory", ErrUnknownFileType, f.Content)
	}
	for _, c := range strings.Split(f.Path, "/") {
		if strings.HasPrefix(c, ".") {
			// .DS_Store, __MACOSX/._model.onnx and the like.
			return fmt.Errorf("%w: hidden file", ErrUnknownFileType)
		}
		if c == "__MACOSX" || c == "__pycache__" {
			return fmt.Errorf("%w: %s directory", ErrUnknownFileType, c)
		}
	}
	base := path.Base(f.Path)
	if f.Path == SignatureFile || bareNames[base] {
		return nil
	}
	ext := strings.ToLower(path.Ext(base))
	if what, ok := codeExecutingExt[ext]; ok {
		return fmt.Errorf("%w: %s", ErrCodeExecutingFormat, what)
	}
	if ext == ".onnx" || companionExt[ext] {
		return nil
	}
	if ext == "" {
		return fmt.Errorf("%w: no extension", ErrUnknownFileType)
	}
	return fmt.Errorf("%w: extension %s", ErrUnknownFileType, printable(ext))
}

// ModelFile returns the path of the model: model.onnx at the top of the
// directory if present, else the only .onnx file.
func ModelFile(m Manifest) (string, error) {
	var onnx []string
	for _, f := range m.Files {
		if strings.ToLower(path.Ext(f.Path)) != ".onnx" {
			continue
		}
		if f.Path == "model.onnx" {
			return f.Path, nil
		}
		onnx = append(onnx, f.Path)
	}
	switch len(onnx) {
	case 0:
		return "", ErrNoModel
	case 1:
		return onnx[0], nil
	}
	return "", fmt.Errorf("%w: %d .onnx files", ErrAmbiguousModel, len(onnx))
}
