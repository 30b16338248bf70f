VERSION=$(cat VERSION)
echo "Building version ${VERSION}"
MAJOR=${VERSION%%.*}
MINOR=${VERSION#*.}; MINOR=${MINOR%.*}
PATCH=${VERSION##*.}
echo "major=$MAJOR minor=$MINOR patch=$PATCH"
NEXT="$MAJOR.$MINOR.$((PATCH + 1))"
echo "next: $NEXT"
