package main

// rampart model onboard|list|show|download|delete|sbom|update: the model
// registry's API from the command line. The server decides everything
// (privileges, signatures, file types); these commands stream bytes and
// print answers.

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rampart-ml/rampart/internal/modelarchive"
)

const (
	modelOnboardSynopsis = "rampart model onboard [--title TITLE] [--credentials FILE] ID VERSION PATH\n\n" +
		"Uploads a model version. PATH is the model directory (sent as a tar made on the fly; symbolic links\n" +
		"are refused) or an archive of it: .tar, .tar.gz, .tgz or .zip, sent as it is."
	modelListSynopsis     = "rampart model list [--json] [--credentials FILE]"
	modelShowSynopsis     = "rampart model show [--json] [--credentials FILE] ID[@VERSION]"
	modelDownloadSynopsis = "rampart model download [-o FILE.tar|DIR] [--credentials FILE] ID@VERSION\n\n" +
		"Downloads the version's directory exactly as onboarded, model.sig included. -o FILE.tar (default\n" +
		"ID-VERSION.tar) keeps the tar; -o DIR (which must not exist) unpacks it safely, ready for\n" +
		"rampart model verify --key PUBLIC.pem DIR. Nothing is left behind if the download fails."
	modelDeleteSynopsis = "rampart model delete [--credentials FILE] ID[@VERSION]\n\n" +
		"Deletes a version (refused while a model service uses it), or a model that has no versions left."
	modelSBOMSynopsis   = "rampart model sbom [-o FILE] [--credentials FILE] ID@VERSION\n\nWrites the version's CycloneDX 1.6 ML-BOM (JSON) to stdout or FILE."
	modelUpdateSynopsis = "rampart model update [--title TITLE] [--description TEXT] [--credentials FILE] ID"
)

// registryModel and registryVersion are the server's answers, as far as
// the tables use them; --json prints the answers as they are.
type registryModel struct {
	ID          string            `json:"id"`
	Domain      string            `json:"domain"`
	Title       string            `json:"title"`
	Description string            `json:"description"`
	CreatedAt   time.Time         `json:"created_at"`
	Versions    []registryVersion `json:"versions"`
}

type registryVersion struct {
	ModelID       string    `json:"model_id"`
	Version       string    `json:"version"`
	State         string    `json:"state"`
	StateReason   string    `json:"state_reason"`
	ModelFile     string    `json:"model_file"`
	SubjectDigest string    `json:"subject_digest"`
	Signed        bool      `json:"signed"`
	SignerKeyID   string    `json:"signer_key_id"`
	VerifiedAt    time.Time `json:"verified_at"`
	CreatedAt     time.Time `json:"created_at"`
	Files         []struct {
		Path   string `json:"path"`
		Size   int64  `json:"size"`
		Digest string `json:"digest"`
	} `json:"files"`
}

// splitRef splits ID[@VERSION]; needVersion makes the version required.
func splitRef(ref string, needVersion bool) (id, version string, err error) {
	id, version, hasVersion := strings.Cut(ref, "@")
	switch {
	case id == "":
		return "", "", usageError("%q: want ID or ID@VERSION", ref)
	case needVersion && version == "":
		return "", "", usageError("%q: want ID@VERSION", ref)
	case hasVersion && version == "":
		return "", "", usageError("%q: the version after @ is empty", ref)
	}
	return id, version, nil
}

func modelPath(id, version string) string {
	p := "/api/v1/models/" + url.PathEscape(id)
	if version != "" {
		p += "/versions/" + url.PathEscape(version)
	}
	return p
}

// streamingClient is the session's client without its whole-request
// timeout: an upload or download of gigabytes takes as long as it takes,
// and ctx (Ctrl-C) still ends it.
func (s *session) streamingClient() *http.Client {
	c := *s.http
	c.Timeout = 0
	return &c
}

// ---- onboard ----

func modelOnboard(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	var f clientFlags
	fs := newFlagSet("rampart model onboard", modelOnboardSynopsis, stdout)
	f.register(fs)
	title := fs.String("title", "", "the model's title, set after the upload (default: unchanged; the id for a new model)")
	pos, done, err := parseFlagsAndArgs(fs, args, "ID", "VERSION", "PATH")
	if done || err != nil {
		return err
	}
	id, version, path := pos[0], pos[1], pos[2]
	body, err := newUploadBody(path)
	if err != nil {
		return err
	}
	s, err := openAccessSession(&f, env, stderr)
	if err != nil {
		return err
	}
	prog := newProgress(stderr, "uploaded", body.total, isTerminal(stderr) && !inCI(env))
	var v registryVersion
	err = s.authorized(ctx, func(token string) error {
		rd, err := body.open()
		if err != nil {
			return err
		}
		defer rd.Close()
		prog.reset()
		return s.upload(ctx, token, modelPath(id, version), body.contentType, body.length, prog.reader(rd), &v)
	})
	prog.finish(err == nil)
	if err != nil {
		return fmt.Errorf("onboard %s@%s: %w", id, version, err)
	}
	signed := "unsigned"
	if v.Signed {
		signed = "signed by key " + v.SignerKeyID
	}
	fmt.Fprintf(stdout, "Onboarded %s@%s: %d files, %s\nsubject sha256:%s\n", id, version, len(v.Files), signed, v.SubjectDigest)
	if *title != "" {
		if err := s.authorizedDo(ctx, http.MethodPatch, modelPath(id, ""), map[string]string{"title": *title}, nil); err != nil {
			return fmt.Errorf("set the title of %s: %w", id, err)
		}
	}
	return nil
}

// parseFlagsAndArgs parses args that hold exactly the positional
// arguments names, before, after or among the flags.
func parseFlagsAndArgs(fs *flag.FlagSet, args []string, names ...string) (pos []string, done bool, err error) {
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			return nil, true, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("%w: %v", errUsage, err)
		}
		if fs.NArg() == 0 {
			break
		}
		if fs.Arg(0) == "" {
			return nil, false, usageError("an empty argument: want %s", strings.Join(names, " "))
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != len(names) {
		return nil, false, usageError("want %s, got %d argument(s)", strings.Join(names, " "), len(pos))
	}
	return pos, false, nil
}

// upload PUTs a streamed body and decodes the JSON answer into out.
func (s *session) upload(ctx context.Context, token, path, contentType string, length int64, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.server+path, body)
	if err != nil {
		return err
	}
	req.ContentLength = length // -1: unknown (chunked)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := s.streamingClient().Do(req)
	if err != nil {
		return transportError(s.server, err)
	}
	defer res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return readAPIError(res)
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, maxResponseBytes)).Decode(out); err != nil {
		return fmt.Errorf("PUT %s: the server's answer is not the JSON expected: %v", path, err)
	}
	return nil
}

// uploadBody is what onboard sends: an archive file as it is, or a
// directory tarred on the fly. open can be called again (a retry after a
// refreshed token) and starts over.
type uploadBody struct {
	contentType string
	length      int64 // the Content-Length; -1 for a directory
	total       int64 // the size for the progress display (estimated for a directory)
	open        func() (io.ReadCloser, error)
}

func newUploadBody(path string) (*uploadBody, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, usageError("%s: %v", path, unwrapPathError(err))
	}
	if fi.IsDir() {
		files, total, err := listModelDir(path)
		if err != nil {
			return nil, err
		}
		return &uploadBody{contentType: "application/x-tar", length: -1, total: total,
			open: func() (io.ReadCloser, error) { return tarDir(path, files) }}, nil
	}
	name := strings.ToLower(path)
	var ct string
	switch {
	case strings.HasSuffix(name, ".tar"):
		ct = "application/x-tar"
	case strings.HasSuffix(name, ".tar.gz"), strings.HasSuffix(name, ".tgz"):
		ct = "application/gzip"
	case strings.HasSuffix(name, ".zip"):
		ct = "application/zip"
	default:
		return nil, usageError("%s: want a model directory or a .tar, .tar.gz, .tgz or .zip file", path)
	}
	if !fi.Mode().IsRegular() {
		return nil, usageError("%s is not a regular file", path)
	}
	return &uploadBody{contentType: ct, length: fi.Size(), total: fi.Size(),
		open: func() (io.ReadCloser, error) {
			return os.Open(path) // #nosec G304 -- the archive the user named
		}}, nil
}

// dirFile is one file of a model directory to tar.
type dirFile struct {
	rel  string // slash-separated, relative to the directory
	size int64
}

// listModelDir lists the regular files under dir, refusing symbolic links
// and special files (the server would refuse them too, after the upload),
// and estimates the tar's size.
func listModelDir(dir string) ([]dirFile, int64, error) {
	var files []dirFile
	var total int64 = 1024 // the end-of-archive blocks
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		switch t := d.Type(); {
		case t&fs.ModeSymlink != 0:
			return fmt.Errorf("%s is a symbolic link: a model directory holds regular files only", p)
		case d.IsDir():
			return nil
		case !t.IsRegular():
			return fmt.Errorf("%s is not a regular file", p)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		files = append(files, dirFile{rel: filepath.ToSlash(rel), size: fi.Size()})
		total += 512 + (fi.Size()+511)/512*512
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("read model directory: %w", err)
	}
	if len(files) == 0 {
		return nil, 0, fmt.Errorf("%s holds no files", dir)
	}
	return files, total, nil
}

// tarDir streams a tar of files under dir through a pipe: constant
// memory, whatever the model's size. Files are opened through os.Root,
// so nothing outside dir is read even if the directory changes meanwhile.
func tarDir(dir string, files []dirFile) (io.ReadCloser, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open model directory: %w", err)
	}
	pr, pw := io.Pipe()
	go func() {
		defer root.Close()
		pw.CloseWithError(writeDirTar(pw, root, files))
	}()
	return pr, nil
}

func writeDirTar(w io.Writer, root *os.Root, files []dirFile) error {
	tw := tar.NewWriter(w)
	for _, f := range files {
		if err := tarFile(tw, root, f); err != nil {
			return err
		}
	}
	return tw.Close()
}

func tarFile(tw *tar.Writer, root *os.Root, f dirFile) error {
	in, err := root.Open(filepath.FromSlash(f.rel))
	if err != nil {
		return fmt.Errorf("open %s: %w", f.rel, err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", f.rel, err)
	}
	if !fi.Mode().IsRegular() || fi.Size() != f.size {
		return fmt.Errorf("%s changed during the upload", f.rel)
	}
	// No owner, mode or time of this machine goes to the server.
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.rel, Size: f.size, Mode: 0o644}); err != nil {
		return fmt.Errorf("tar %s: %w", f.rel, err)
	}
	if _, err := io.CopyN(tw, in, f.size); err != nil {
		return fmt.Errorf("read %s: %w", f.rel, err)
	}
	return nil
}

// ---- list, show ----

func modelList(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	return listCommand(ctx, args, stdout, stderr, env, "rampart model list", modelListSynopsis, "/api/v1/models", nil,
		"No models.", "ID\tDOMAIN\tTITLE\tCREATED", func(m registryModel) string {
			return strings.Join([]string{m.ID, m.Domain, m.Title, formatTime(m.CreatedAt)}, "\t")
		})
}

func modelShow(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	var f clientFlags
	fs := newFlagSet("rampart model show", modelShowSynopsis, stdout)
	f.register(fs)
	asJSON := fs.Bool("json", false, "print the server's answer as JSON")
	ref, done, err := parseFlagsAndArg(fs, args, "ID or ID@VERSION")
	if done || err != nil {
		return err
	}
	id, version, err := splitRef(ref, false)
	if err != nil {
		return err
	}
	s, err := openAccessSession(&f, env, stderr)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := s.authorizedDo(ctx, http.MethodGet, modelPath(id, version), nil, &raw); err != nil {
		return fmt.Errorf("show %s: %w", ref, err)
	}
	if *asJSON {
		return writeIndentedJSON(stdout, raw)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	if version == "" {
		var m registryModel
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("show %s: the server's answer is not the JSON expected: %v", ref, err)
		}
		fmt.Fprintf(tw, "id:\t%s\ndomain:\t%s\ntitle:\t%s\ncreated:\t%s\n", m.ID, m.Domain, m.Title, formatTime(m.CreatedAt))
		if m.Description != "" {
			fmt.Fprintf(tw, "description:\t%s\n", strings.ReplaceAll(m.Description, "\n", "\n\t"))
		}
		if len(m.Versions) == 0 {
			fmt.Fprintln(tw, "\nNo versions.")
			return tw.Flush()
		}
		fmt.Fprintln(tw, "\nVERSION\tSTATE\tSIGNER KEY\tCREATED")
		for _, v := range m.Versions {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.Version, v.State, orDash(v.SignerKeyID), formatTime(v.CreatedAt))
		}
		return tw.Flush()
	}
	var v registryVersion
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("show %s: the server's answer is not the JSON expected: %v", ref, err)
	}
	state := v.State
	if v.StateReason != "" {
		state += " (" + v.StateReason + ")"
	}
	fmt.Fprintf(tw, "model:\t%s\nversion:\t%s\nstate:\t%s\nsigned:\t%t\nsigner key:\t%s\nsubject:\tsha256:%s\nmodel file:\t%s\nverified:\t%s\ncreated:\t%s\n",
		v.ModelID, v.Version, state, v.Signed, orDash(v.SignerKeyID), v.SubjectDigest, v.ModelFile, formatTime(v.VerifiedAt), formatTime(v.CreatedAt))
	fmt.Fprintln(tw, "\nFILE\tSIZE\tSHA-256")
	for _, file := range v.Files {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", file.Path, file.Size, file.Digest)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ---- download ----

func modelDownload(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	var f clientFlags
	fs := newFlagSet("rampart model download", modelDownloadSynopsis, stdout)
	f.register(fs)
	out := fs.String("o", "", "FILE.tar to write, or DIR to unpack into (default ID-VERSION.tar)")
	ref, done, err := parseFlagsAndArg(fs, args, "ID@VERSION")
	if done || err != nil {
		return err
	}
	id, version, err := splitRef(ref, true)
	if err != nil {
		return err
	}
	dest := *out
	if dest == "" {
		dest = id + "-" + version + ".tar"
	}
	if _, err := os.Lstat(dest); err == nil {
		return usageError("%s exists already; name a new file or directory", dest)
	}
	s, err := openAccessSession(&f, env, stderr)
	if err != nil {
		return err
	}
	prog := newProgress(stderr, "downloaded", -1, isTerminal(stderr) && !inCI(env))
	var what string
	err = s.authorized(ctx, func(token string) error {
		prog.reset()
		var err error
		what, err = s.download(ctx, token, modelPath(id, version)+"/download", dest, prog)
		return err
	})
	prog.finish(err == nil)
	if err != nil {
		return fmt.Errorf("download %s: %w", ref, err)
	}
	fmt.Fprintf(stdout, "Downloaded %s to %s (%s)\n", ref, dest, what)
	return nil
}

// download writes the tar at path to dest: a .tar file (written aside
// and renamed once complete) or a new directory (unpacked by
// modelarchive, removed on failure).
func (s *session) download(ctx context.Context, token, path, dest string, prog *progress) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.server+path, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := s.streamingClient().Do(req)
	if err != nil {
		return "", transportError(s.server, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return "", readAPIError(res)
	}
	prog.total = res.ContentLength
	body := &cutReader{r: prog.reader(res.Body)}
	if !strings.HasSuffix(strings.ToLower(dest), ".tar") {
		man, err := modelarchive.Extract(ctx, body, dest, modelarchive.DefaultLimits())
		if err == nil {
			// Extract stops at the end-of-archive marker: reading on to
			// the end of the response tells a finished download from one
			// the server cut short.
			_, err = io.Copy(io.Discard, body)
			if err != nil {
				_ = os.RemoveAll(dest)
			}
		}
		if err != nil {
			return "", body.explain(err)
		}
		return fmt.Sprintf("%d files unpacked", len(man.Files)), nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".part-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	n, err := io.Copy(tmp, body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", body.explain(err)
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d bytes", n), nil
}

// cutReader remembers whether reading the response failed, so that a
// download the server aborted is reported as such rather than as a
// broken archive.
type cutReader struct {
	r   io.Reader
	err error
}

func (c *cutReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		c.err = err
	}
	return n, err
}

func (c *cutReader) explain(err error) error {
	if c.err != nil {
		return fmt.Errorf("the server cut the download short (a stored file may have failed its integrity check; see rampart model show): %w", c.err)
	}
	return err
}

// ---- delete, sbom, update ----

func modelDelete(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	var f clientFlags
	fs := newFlagSet("rampart model delete", modelDeleteSynopsis, stdout)
	f.register(fs)
	ref, done, err := parseFlagsAndArg(fs, args, "ID or ID@VERSION")
	if done || err != nil {
		return err
	}
	id, version, err := splitRef(ref, false)
	if err != nil {
		return err
	}
	s, err := openAccessSession(&f, env, stderr)
	if err != nil {
		return err
	}
	if err := s.authorizedDo(ctx, http.MethodDelete, modelPath(id, version), nil, nil); err != nil {
		return fmt.Errorf("delete %s: %w", ref, err)
	}
	fmt.Fprintf(stdout, "Deleted %s\n", ref)
	return nil
}

func modelSBOM(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	var f clientFlags
	fs := newFlagSet("rampart model sbom", modelSBOMSynopsis, stdout)
	f.register(fs)
	out := fs.String("o", "", "the file to write (default stdout)")
	ref, done, err := parseFlagsAndArg(fs, args, "ID@VERSION")
	if done || err != nil {
		return err
	}
	id, version, err := splitRef(ref, true)
	if err != nil {
		return err
	}
	s, err := openAccessSession(&f, env, stderr)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := s.authorizedDo(ctx, http.MethodGet, modelPath(id, version)+"/sbom", nil, &raw); err != nil {
		return fmt.Errorf("ML-BOM of %s: %w", ref, err)
	}
	if *out == "" {
		return writeIndentedJSON(stdout, raw)
	}
	data := append([]byte(raw), '\n')
	if err := os.WriteFile(*out, data, 0o644); err != nil { // #nosec G306 -- a BOM is meant to be shared
		return fmt.Errorf("write ML-BOM: %w", err)
	}
	fmt.Fprintf(stdout, "Wrote the ML-BOM of %s to %s\n", ref, *out)
	return nil
}

func modelUpdate(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) error {
	var f clientFlags
	fs := newFlagSet("rampart model update", modelUpdateSynopsis, stdout)
	f.register(fs)
	title := fs.String("title", "", "the new title")
	description := fs.String("description", "", "the new description (\"\" clears it)")
	id, done, err := parseFlagsAndArg(fs, args, "the model ID")
	if done || err != nil {
		return err
	}
	body := map[string]string{}
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "title":
			body["title"] = *title
		case "description":
			body["description"] = *description
		}
	})
	if len(body) == 0 {
		return usageError("nothing to change: give --title and/or --description")
	}
	s, err := openAccessSession(&f, env, stderr)
	if err != nil {
		return err
	}
	if err := s.authorizedDo(ctx, http.MethodPatch, modelPath(id, ""), body, nil); err != nil {
		return fmt.Errorf("update %s: %w", id, err)
	}
	fmt.Fprintf(stdout, "Updated %s\n", id)
	return nil
}
