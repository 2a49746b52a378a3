#!/usr/bin/env node
// kubectl plugin entry point (`kubectl sluice …` finds kubectl-sluice on PATH). The sources are
// TypeScript run by Node >= 24's type stripping; `make` puts the pinned Node first on PATH.
import '../src/main.ts';
