// Package onboarding holds the end-to-end test of a clinic's onboarding, the chain the
// collector role exists for: a real controller and a real collector on a namespace clinic
// network, the site configuration set with wardctl, a scan, the controller classifying
// what was found, and the clinic's Linux server bootstrapped over SSH by the collector
// until its own agent enrolls and streams. It has no code of its own.
package onboarding
