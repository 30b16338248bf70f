grep -v '^#' requirements.txt | grep '==' | cut -d= -f1 | sort
unpinned=$(grep -v '^#' requirements.txt | grep -vc '==' || true)
echo "unpinned: $unpinned"
