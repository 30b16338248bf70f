branch=feature/add-login_page
slug=${branch//\//-}
slug=${slug//_/-}
echo "$slug"
echo "${branch/feature/fix}"
image=registry.example.com/group/app:1.0
echo "${image/#registry.example.com/mirror.local}"
echo "${image/%1.0/latest}"
