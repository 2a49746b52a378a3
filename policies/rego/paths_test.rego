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

test_kubeconfig if credential("/acme/app/raw/main/kubeconfig")

test_kubeconfig_suffix if credential("/acme/app/raw/main/deploy/prod.kubeconfig")

test_secrets_folder if credential("/acme/app/main/secrets/prod.yaml")

test_ssh_folder if credential("/home/me/.ssh/known_hosts")

test_secrets_as_last_segment_is_a_listing if not credential("/repos/acme/app/actions/secrets")

test_github_contents_api if credential("/repos/acme/app/contents/.npmrc")

test_gitlab_files_api_encoded if credential("/api/v4/projects/acme%2Fapp/repository/files/config%2F.env/raw")

test_gitlab_files_api_json if credential("/api/v4/projects/42/repository/files/deploy%2Fid_rsa")

test_gitlab_raw_web if credential("/acme/app/-/raw/main/.aws/credentials")

test_percent_encoded_name if credential("/acme/app/main/%2Eenv")

test_upper_case_name if credential("/acme/app/main/ID_RSA")

test_bitbucket_src if credential("/2.0/repositories/acme/app/src/main/.git-credentials")

# Signatures and release keys are public: apt and release downloads read them all the time.
test_apt_release_signature if not credential("/debian/dists/bookworm/Release.gpg")

test_detached_signature if not credential("/releases/download/v1.0.0/SHA256SUMS.asc")
