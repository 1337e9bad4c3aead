package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hostileFiles derives files that must each be refused from a valid
// deployment file: aliases and anchors, duplicate keys, wrong types, giant
// fields, control characters, several documents, binary garbage, depth,
// unknown fields and a wrong apiVersion or kind.
func hostileFiles(t *testing.T) map[string][]byte {
	t.Helper()
	base, err := os.ReadFile("../../examples/web_app.yaml")
	if err != nil {
		t.Fatal(err)
	}
	valid := string(base)
	files := map[string][]byte{}
	add := func(name, content string) { files[name] = []byte(content) }
	replace := func(name, old, new string) {
		if !strings.Contains(valid, old) {
			t.Fatalf("%s: the example has no %q", name, old)
		}
		add(name, strings.Replace(valid, old, new, 1))
	}
	// Aliases and anchors.
	replace("alias-replicas", "  replicas: 1\n", "  replicas: &r 1\n  cpu_request: *r\n")
	add("alias-spec", strings.Replace(valid, "spec:\n", "spec: &s\n", 1)+"copy: *s\n")
	add("alias-laughs", "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n")
	replace("merge-key", "spec:\n", "base: &b {replicas: 2}\nspec:\n  <<: *b\n")
	add("alias-env", strings.Replace(strings.Replace(valid, "  environment_variables:\n", "  environment_variables: &e\n", 1),
		"  storage_size_gb: 5\n", "  storage_size_gb: 5\n  volumes: *e\n", 1))
	// Duplicate keys, at each level.
	for _, line := range []string{"  replicas: 1\n", "  name: blog\n", "  docker_image: ghost:5-alpine\n", "kind: Deployment\n", "  cpu_request: 0.5\n",
		"  container_port: 2368\n", "  run_as_uid: 1000\n", "  storage_size_gb: 5\n", "    health_check_path: /ghost/api/admin/site/\n", "  app_type: web_app\n"} {
		replace("duplicate-"+strings.Fields(line)[0], line, line+line)
	}
	// Wrong types.
	for _, f := range []struct{ old, key string }{
		{"  replicas: 1\n", "replicas"}, {"  cpu_request: 0.5\n", "cpu_request"}, {"  memory_request_mb: 512\n", "memory_request_mb"},
		{"  container_port: 2368\n", "container_port"}, {"  run_as_uid: 1000\n", "run_as_uid"}, {"  storage_size_gb: 5\n", "storage_size_gb"},
		{"  name: blog\n", "name"}, {"  docker_image: ghost:5-alpine\n", "docker_image"}, {"  app_type: web_app\n", "app_type"},
		{"  deployment_type: docker\n", "deployment_type"},
	} {
		for i, v := range []string{"[1, 2]", "{a: 1}", "!!binary aGVsbG8="} {
			replace(fmt.Sprintf("type-%s-%d", f.key, i), f.old, "  "+f.key+": "+v+"\n")
		}
	}
	for i, v := range []string{"many", "-1", "1e400", "1.5", ".nan", "true", "[]", "9223372036854775808"} {
		replace(fmt.Sprintf("replicas-%d", i), "  replicas: 1\n", "  replicas: "+v+"\n")
	}
	// Giant fields and a file over the size limit.
	replace("giant-name", "  name: blog\n", "  name: "+strings.Repeat("b", 100_000)+"\n")
	replace("giant-image", "  docker_image: ghost:5-alpine\n", "  docker_image: ghost:"+strings.Repeat("5", 100_000)+"\n")
	replace("giant-env", "  environment_variables:\n", "  environment_variables:\n"+strings.Repeat("    - name: X\n      value: y\n", 5000))
	add("oversize", valid+"# "+strings.Repeat("x", 5<<20)+"\n")
	// Control characters and traversal.
	for i, c := range []string{"\x00", "\x07", "\x1b[31m", "\u202e", "\r", "../", "/", "\\", " ", "\t"} {
		replace(fmt.Sprintf("control-name-%d", i), "  name: blog\n", fmt.Sprintf("  name: %q\n", "bl"+c+"og"))
	}
	replace("traversal-mount", "    storage_mount_path: /var/lib/ghost/content\n", "    storage_mount_path: /var/lib/../../etc\n")
	replace("env-name-newline", "    - name: NODE_ENV\n", "    - name: \"NODE\\nENV\"\n")
	// Documents, garbage, depth.
	add("two-documents", valid+"---\n"+valid)
	add("empty", "")
	add("only-comment", "# nothing\n")
	add("binary", "\x00\x01\x02\xff\xfe\xfd")
	add("not-utf8", strings.Replace(valid, "blog", "bl\xffog", 1))
	add("list", "- a\n- b\n")
	add("scalar", "hello\n")
	add("deep", strings.Repeat("[", 5000)+strings.Repeat("]", 5000)+"\n")
	add("deep-map", strings.Repeat("a:\n ", 2000)+"b\n")
	add("tab-indent", strings.Replace(valid, "  name: blog", "\tname: blog", 1))
	// Unknown fields, versions, kinds, missing parts.
	replace("unknown-field", "  replicas: 1\n", "  replicas: 1\n  privileged: true\n")
	replace("unknown-top", "kind: Deployment\n", "kind: Deployment\nextra: 1\n")
	replace("api-version", "apiVersion: mengi.cloud/v1\n", "apiVersion: mengi.cloud/v2\n")
	replace("kind-user", "kind: Deployment\n", "kind: User\n")
	replace("kind-empty", "kind: Deployment\n", "kind: \"\"\n")
	replace("no-metadata-id", "  id: c0a80101-1b2c-4d3e-8f40-5a6b7c8d9e01\n", "")
	replace("bad-id", "  id: c0a80101-1b2c-4d3e-8f40-5a6b7c8d9e01\n", "  id: ../../etc\n")
	replace("bad-user-id", "  user_id: 0b9e7d6c-5a4f-4e3d-8c2b-1a0f9e8d7c6b\n", "  user_id: root\n")
	replace("bad-time", "  created_at: \"2025-03-01T09:30:00Z\"\n", "  created_at: yesterday\n")
	replace("bad-cluster", "  cluster_id: 6f1c3a52-8d4e-4b7a-9c2e-5d8f0a1b2c3d\n", "  cluster_id: \"../..\"\n")
	replace("root-uid", "  run_as_uid: 1000\n", "  run_as_uid: 0\n")
	replace("secret-and-value", "      secret_ref: blog-mail/password\n", "      secret_ref: blog-mail/password\n      value: x\n")
	replace("no-spec", "spec:\n", "notspec:\n")
	replace("status-garbage", "spec:\n", "status: {phase: [1]}\nspec:\n")
	for i, v := range []string{"[/etc]", "{path: /}", "[{path: /../x, size_gb: 1}]", "[{path: relative, size_gb: 1}]", "[{path: /a, size_gb: -1}]", "[{path: /a, size_gb: 1, extra: 1}]"} {
		replace(fmt.Sprintf("volumes-%d", i), "  storage_size_gb: 5\n", "  storage_size_gb: 5\n  volumes: "+v+"\n")
	}
	for i, v := range []string{"[1]", "{ingress: [1]}", "{health_check_path: 5}", "{unknown: 1}"} {
		replace(fmt.Sprintf("config-%d", i), "  config:\n    health_check_path: /ghost/api/admin/site/\n    storage_mount_path: /var/lib/ghost/content\n", "  config: "+v+"\n")
	}
	return files
}

// TestValidateHostileFiles: every hostile file is refused with a line
// naming it (file:line where a line is known), exit status 1 (or 2 when
// it cannot be read), never a panic or a pass.
func TestValidateHostileFiles(t *testing.T) {
	files := hostileFiles(t)
	if len(files) < 100 {
		t.Fatalf("only %d hostile files", len(files))
	}
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		out, errOut, code, msg := runValidate(t, path)
		if code != 1 && code != 2 {
			t.Errorf("%s: exit %d (%s), want it refused\nstdout: %.300s\nstderr: %.300s", name, code, msg, out, errOut)
			continue
		}
		if !strings.Contains(out+errOut+msg, path) {
			t.Errorf("%s: no line names the file:\n%.300s%.300s", name, out, errOut)
		}
	}
	// Links are refused, never followed.
	for i, target := range []string{"/etc/passwd", "../../examples/web_app.yaml", "/dev/zero", dir, "/nonexistent"} {
		link := filepath.Join(dir, fmt.Sprintf("link-%d.yaml", i))
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		if _, _, code, _ := runValidate(t, link); code != 1 && code != 2 {
			t.Errorf("link to %s: exit %d, want it refused", target, code)
		}
	}
	t.Logf("%d hostile files and 5 links refused", len(files))
}
