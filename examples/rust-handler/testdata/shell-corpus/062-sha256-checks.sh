sha256sum VERSION
printf 'hello\n' > h.txt
sha256sum h.txt > h.sha256
sha256sum -c h.sha256
echo "tampered" > h.txt
sha256sum -c h.sha256 || echo "checksum mismatch detected"
