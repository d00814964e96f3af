#!/bin/sh
# scripts/sign with a throw-away code-signing certificate made here (openssl CLI): signs copies
# of the DLL, the EXEs and the MSI, then `osslsigncode verify` must accept each with the test CA
# as trust anchor, and must reject an unsigned copy and a signed copy changed after signing.
# No timestamp (no network here).
#
#   sign_test.sh SIGN_SCRIPT WORKDIR FILE...
# Prints "N passed, N failed"; exit status 0 only when none failed.
set -eu
sign=$1 work=$2
shift 2
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok    $*"; }
fail() { failed=$((failed + 1)); echo "FAIL  $*"; }

rm -rf "$work"
mkdir -p "$work/files"
cd "$work"

# A CA and a code-signing leaf, valid for a day.
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 \
	-subj "/CN=CertRelay Test Code Signing CA" \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout signer.key -out signer.csr \
	-subj "/CN=CertRelay Test Signer" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n' >ext.cnf
openssl x509 -req -in signer.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
	-extfile ext.cnf -out signer.pem 2>/dev/null
printf 'test-password\n' >pfx.pass
openssl pkcs12 -export -inkey signer.key -in signer.pem -certfile ca.pem -out signer.pfx \
	-passout file:pfx.pass
ok "throw-away code-signing certificate and PFX"

for f in "$@"; do cp "$f" files/; done
cp "$1" unsigned.bin
if "$sign" --pfx signer.pfx --password-file pfx.pass --name "CertRelay test" files/*; then
	ok "scripts/sign signed $(ls files | wc -l) files"
else
	fail "scripts/sign exited $?"
fi

for f in files/*; do
	if osslsigncode verify -CAfile ca.pem -in "$f" >"$f.verify" 2>&1; then
		ok "osslsigncode verify accepts $(basename "$f")"
	else
		fail "osslsigncode verify rejects $(basename "$f"):"
		sed 's/^/      /' "$f.verify"
	fi
	rm -f "$f.verify"
done

if osslsigncode verify -CAfile ca.pem -in unsigned.bin >/dev/null 2>&1; then
	fail "osslsigncode verify accepts an unsigned file"
else
	ok "osslsigncode verify rejects an unsigned file"
fi
# One byte changed inside the signed PE image (well before the appended signature).
signed=$(ls files/*.dll | head -n 1)
cp "$signed" tampered.dll
printf 'X' | dd of=tampered.dll bs=1 seek=1024 conv=notrunc 2>/dev/null
if osslsigncode verify -CAfile ca.pem -in tampered.dll >/dev/null 2>&1; then
	fail "osslsigncode verify accepts a file changed after signing"
else
	ok "osslsigncode verify rejects a file changed after signing"
fi
if "$sign" --pfx signer.pfx --password-file missing.pass files/* >/dev/null 2>&1; then
	fail "scripts/sign without a readable password file succeeded"
else
	ok "scripts/sign refuses a missing password file"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
