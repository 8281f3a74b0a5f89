package main

import (
	"archive/tar"
	"database/sql"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rampart-ml/rampart/internal/app/apptest"
	"github.com/rampart-ml/rampart/internal/datadir"
)

// TestKillMidUpload kills the server with SIGKILL while a large model
// streams in: after a restart nothing of it is left (no staged file, no
// blob, no row) and the audit chain verifies.
func TestKillMidUpload(t *testing.T) {
	t.Parallel()
	p, s, _ := auditedServer(t)
	admin := s.Login(t, "admin", privacyAdminPassword).AccessToken
	apptest.WantStatus(t, s.Do(t, "POST", "/api/v1/domains", admin, map[string]string{"name": "com.acme"}), http.StatusCreated)

	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		const size = 1 << 30 // far more than is sent before the kill
		if err := tw.WriteHeader(&tar.Header{Name: "model.onnx", Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
			pw.CloseWithError(err)
			return
		}
		chunk := make([]byte, 1<<20)
		for {
			if _, err := tw.Write(chunk); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
	}()
	req, err := http.NewRequest("PUT", s.URL+"/api/v1/models/com.acme.big/versions/1.0", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-tar")
	req.Header.Set("Authorization", "Bearer "+admin)
	sent := make(chan error, 1)
	go func() {
		res, err := s.Client.Do(req)
		if err == nil {
			res.Body.Close()
		}
		sent <- err
	}()
	// Wait until the upload is being staged: its files are written,
	// encrypted, into the artifact store's tmp/ (zips are spooled in the
	// staging directory, checked too below).
	staging := filepath.Join(s.DataDir, datadir.StagingDir)
	artTmp := filepath.Join(s.DataDir, datadir.ArtifactsDir, "tmp")
	deadline := time.Now().Add(30 * time.Second)
	for stagedBytes(artTmp) < 8<<20 {
		if time.Now().After(deadline) {
			t.Fatal("the upload never reached the artifact store's staging area")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.wait(exitTimeout)
	pr.CloseWithError(io.ErrClosedPipe)
	<-sent

	p2 := startServerEnv(t, []string{"RAMPART_ADMIN_PASSWORD=" + privacyAdminPassword}, s.DataDir, fastHashingFlags...)
	p2.stopOK()
	for _, d := range []string{staging, artTmp} {
		if n := stagedBytes(d); n != 0 {
			t.Errorf("%s holds %d bytes after the restart", d, n)
		}
	}
	if n := stagedBytes(filepath.Join(s.DataDir, datadir.ArtifactsDir, "blobs")); n != 0 {
		t.Errorf("the artifact store holds %d bytes of blobs", n)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(s.DataDir, datadir.DatabaseFile)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows int
	if err := db.QueryRowContext(t.Context(), `SELECT (SELECT count(*) FROM models) + (SELECT count(*) FROM model_versions) + (SELECT count(*) FROM model_files)`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 0 {
		t.Errorf("%d model rows after the killed upload", rows)
	}
	if code, stdout, stderr := runRampart(t, nil, "audit", "verify", "--data-dir", s.DataDir); code != 0 {
		t.Fatalf("audit verify after the restart: exit %d\n%s%s", code, stdout, stderr)
	}
}

// stagedBytes is the size of the regular files under dir (0 if absent).
func stagedBytes(dir string) int64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
