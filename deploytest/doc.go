// Package deploytest holds the offline checks of Ward's deployment files: the Terraform
// modules, the NixOS module and flake, the systemd units and the .deb and .rpm packages.
// It has no API; its tests are the product.
package deploytest
