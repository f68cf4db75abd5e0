# The fixed-output hashes of each Go module's dependencies, for buildGoModule.
#
# They cannot be computed without a Nix daemon and network access, so they start as
# lib.fakeHash: the first `nix build .#ward-agent` fails and prints the right hash
# ("got: sha256-..."); put it here and build again. Update after every go.sum change.
{ lib }:
{
  ward-agent = lib.fakeHash;
  ward-controller = lib.fakeHash;
}
