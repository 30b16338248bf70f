NAME=demo
cat <<EOF
app: $NAME
version: $(cat VERSION)
literal: \$NAME
EOF
cat <<'EOF'
no $NAME expansion here
EOF
	cat <<-EOF
	tabs stripped for $NAME
	EOF
