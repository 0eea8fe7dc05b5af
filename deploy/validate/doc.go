// Package validate holds the tests of the deploy/ material (run by .ci/deploy-check): it
// renders every kustomization under deploy/kubernetes with the kustomize Go API, decodes
// each object strictly into its Kubernetes (or prometheus-operator) Go type, checks what
// the manifests promise (native sidecar, probes the proxy really serves, non-root
// read-only container, known settings only, egress limited to DNS and HTTPS), runs the
// real proxy binary with each container's environment and files, and checks the compose
// demo. It is a module of its own, so that the Kubernetes dependencies stay out of the
// proxy's go.mod.
package validate
