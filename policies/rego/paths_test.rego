package sluice.paths_test

import data.sluice.lib_test
import data.sluice.paths

credential(path) if paths.credential_path with input as lib_test.request("GET", "github.com", path)

test_dotenv if credential("/acme/app/raw/main/.env")

test_dotenv_variant if credential("/acme/app/raw/main/.env.production")

test_ssh_key if credential("/home/me/.ssh/id_ed25519")

test_aws_credentials if credential("/x/.aws/credentials")

test_pem if credential("/certs/tls.key")

test_ordinary_file if not credential("/acme/app/raw/main/src/env.ts")

test_readme if not credential("/acme/app/README.md")
