// Command ociimage builds the hospital-erp container image without a
// container engine: one layer holding the static binary (plus a passwd entry
// for the non-root user and the CA bundle), on an empty base, written as an
// OCI image layout and a tarball that "crane push" or "docker load" accept.
// The result is reproducible: the same binary gives the same digest.
//
//	go run . -binary ../../bin/hospital-erp -ref ghcr.io/hospital-erp/hospital-erp:0.1.0 \
//	    -layout ../../bin/oci -tarball ../../bin/hospital-erp-image.tar
package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// The user the image runs as; the pods set the same runAsUser.
const (
	uid = 65532
	gid = 65532
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ociimage:", err)
		os.Exit(1)
	}
}

// Options describe one image build.
type Options struct {
	Binary   string // the static hospital-erp binary
	Ref      string // registry/repository:tag recorded in the outputs
	Layout   string // OCI image layout directory to write ("" = none)
	Tarball  string // image tarball to write ("" = none)
	CACerts  string // CA bundle to include ("" = none)
	Version  string // org.opencontainers.image.version
	Revision string // org.opencontainers.image.revision
	Source   string // org.opencontainers.image.source
	Created  time.Time
}

func run(args []string, stdout io.Writer) error {
	var o Options
	fs := flag.NewFlagSet("ociimage", flag.ContinueOnError)
	fs.StringVar(&o.Binary, "binary", "bin/hospital-erp", "static hospital-erp binary")
	fs.StringVar(&o.Ref, "ref", "ghcr.io/hospital-erp/hospital-erp:dev", "image reference (registry/repository:tag)")
	fs.StringVar(&o.Layout, "layout", "", "write an OCI image layout to this directory")
	fs.StringVar(&o.Tarball, "tarball", "", "write an image tarball (crane push, docker load) to this file")
	fs.StringVar(&o.CACerts, "ca-certs", "/etc/ssl/certs/ca-certificates.crt", "CA bundle to include as /etc/ssl/certs/ca-certificates.crt (empty: none)")
	fs.StringVar(&o.Version, "version", "", "version label")
	fs.StringVar(&o.Revision, "revision", "", "source revision label")
	fs.StringVar(&o.Source, "source", "https://github.com/hospital-erp/hospital-erp", "source repository label")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Created = time.Unix(0, 0).UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH: %v", err)
		}
		o.Created = time.Unix(n, 0).UTC()
	}
	img, err := Build(o)
	if err != nil {
		return err
	}
	if err := Write(img, o); err != nil {
		return err
	}
	d, _ := img.Digest()
	fmt.Fprintf(stdout, "%s@%s\n", o.Ref, d)
	return nil
}

// Build assembles the image and validates it (manifest, config and layer
// digests and sizes all agree: what "crane validate" checks).
func Build(o Options) (v1.Image, error) {
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, err
	}
	arch, err := staticArch(o.Binary)
	if err != nil {
		return nil, err
	}
	files := map[string]file{
		"hospital-erp": {0o555, bin},
		"etc/passwd":   {0o444, []byte(fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/nonexistent:/sbin/nologin\n", uid, gid))},
		"etc/group":    {0o444, []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", gid))},
	}
	if o.CACerts != "" {
		ca, err := os.ReadFile(o.CACerts)
		if err != nil {
			return nil, fmt.Errorf("CA bundle: %v (pass -ca-certs '' to leave it out)", err)
		}
		files["etc/ssl/certs/ca-certificates.crt"] = file{0o444, ca}
	}
	layerTar, err := tarOf(files, o.Created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	// plainLayer hides the tarball layer's own descriptor, whose empty
	// annotations map would make the manifest fail validation.
	img, err = mutate.AppendLayers(img, plainLayer{layer})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = arch, "linux"
	cf.Created = v1.Time{Time: o.Created}
	cf.History = []v1.History{{
		Created:   v1.Time{Time: o.Created},
		CreatedBy: "ociimage: static hospital-erp binary on an empty base",
	}}
	cf.Config = v1.Config{
		User:         fmt.Sprintf("%d:%d", uid, gid),
		Entrypoint:   []string{"/hospital-erp"},
		Cmd:          []string{"api"},
		WorkingDir:   "/",
		Env:          []string{"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
		ExposedPorts: map[string]struct{}{"3000/tcp": {}, "9464/tcp": {}},
		Labels: map[string]string{
			"org.opencontainers.image.title":    "hospital-erp",
			"org.opencontainers.image.source":   o.Source,
			"org.opencontainers.image.version":  o.Version,
			"org.opencontainers.image.revision": o.Revision,
		},
	}
	if o.CACerts == "" {
		cf.Config.Env = nil
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	if err := validate.Image(img); err != nil {
		return nil, fmt.Errorf("the built image is invalid: %v", err)
	}
	return img, nil
}

// Write stores the image as an OCI layout and/or a tarball.
func Write(img v1.Image, o Options) error {
	ref, err := name.NewTag(o.Ref)
	if err != nil {
		return fmt.Errorf("-ref: %v", err)
	}
	if o.Layout != "" {
		if err := os.RemoveAll(o.Layout); err != nil {
			return err
		}
		p, err := layout.Write(o.Layout, empty.Index)
		if err != nil {
			return err
		}
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
			"org.opencontainers.image.ref.name": ref.String(),
		})); err != nil {
			return err
		}
	}
	if o.Tarball != "" {
		if err := tarball.WriteToFile(o.Tarball, ref, img); err != nil {
			return err
		}
	}
	return nil
}

type plainLayer struct{ v1.Layer }

type file struct {
	mode int64
	data []byte
}

// tarOf writes files (and their parent directories) in a fixed order with
// fixed times and root ownership: the same inputs give the same bytes.
func tarOf(files map[string]file, mtime time.Time) ([]byte, error) {
	dirs := map[string]bool{}
	for p := range files {
		for d := dirOf(p); d != ""; d = dirOf(d) {
			dirs[d] = true
		}
	}
	var names []string
	for d := range dirs {
		names = append(names, d+"/")
	}
	for p := range files {
		names = append(names, p)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		h := &tar.Header{Name: n, ModTime: mtime, Uid: 0, Gid: 0, Format: tar.FormatPAX}
		if f, ok := files[n]; ok {
			h.Typeflag, h.Mode, h.Size = tar.TypeReg, f.mode, int64(len(f.data))
			if err := tw.WriteHeader(h); err != nil {
				return nil, err
			}
			if _, err := tw.Write(f.data); err != nil {
				return nil, err
			}
			continue
		}
		h.Typeflag, h.Mode = tar.TypeDir, 0o555
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func dirOf(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return ""
}

// staticArch returns the image architecture of a Linux ELF executable and
// refuses a dynamically linked one: an empty base has no C library.
func staticArch(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s: not a Linux executable: %v", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", errors.New(path + " is dynamically linked; build it with CGO_ENABLED=0")
		}
	}
	switch f.Machine {
	case elf.EM_X86_64:
		return "amd64", nil
	case elf.EM_AARCH64:
		return "arm64", nil
	}
	return "", fmt.Errorf("%s: unsupported machine %v", path, f.Machine)
}
