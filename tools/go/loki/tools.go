//go:build tools

package tools

import _ "github.com/grafana/loki/v3/pkg/loki"
