echo start
definitely-not-a-command --version
echo unreachable
