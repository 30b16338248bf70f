package main

// Go's copy of the Mozilla root certificates, used only where the system
// has none (a container image without a CA bundle, such as the one
// deploy/image builds): GitLab and registries over HTTPS work there too.
// SSL_CERT_FILE and SSL_CERT_DIR still name other roots.
import _ "golang.org/x/crypto/x509roots/fallback"
