for os in linux darwin; do
  for arch in amd64 arm64; do
    out="build/app-$os-$arch"
    echo "$os/$arch" > "$out"
  done
done
ls build
cat build/app-darwin-arm64
