# Ward's binaries, built with buildGoModule from the repository (the Go workspace's
# modules, each built on its own with GOWORK=off so that vendoring works).
#
# vendorHash: the hashes in ./vendor-hashes.nix must be set once per change of a
# module's go.sum; see nix/README.md.
{
  lib,
  buildGoModule,
  component ? "ward-agent",
  version ? "0.0.0-dev",
}:

let
  components = {
    ward-agent = {
      modRoot = "agent";
      subPackages = [ "cmd/ward-agent" ];
      description = "Ward agent: HIPAA Security Rule compliance for clinic servers";
    };
    ward-controller = {
      modRoot = "controller";
      subPackages = [
        "cmd/ward-controller"
        "cmd/wardctl"
      ];
      description = "Ward controller and wardctl";
    };
  };
  c = components.${component};
  vendorHashes = import ./vendor-hashes.nix { inherit lib; };
in
buildGoModule {
  pname = component;
  inherit version;
  inherit (c) modRoot subPackages;

  # The whole repository: the agent and controller modules replace ../pkg and ../proto.
  src = lib.cleanSourceWith {
    src = ../.;
    filter =
      path: type:
      let
        rel = lib.removePrefix (toString ../. + "/") (toString path);
      in
      !(lib.hasPrefix "bin" rel || lib.hasPrefix "dist" rel || lib.hasPrefix "terraform" rel);
  };

  vendorHash = vendorHashes.${component};
  proxyVendor = true;
  env.GOWORK = "off";
  env.CGO_ENABLED = "0";
  ldflags = [
    "-s"
    "-w"
    "-X github.com/wardsec/ward/pkg/version.Version=${version}"
  ];
  doCheck = false; # the tests run in `make test`; some need loopback servers

  meta = {
    inherit (c) description;
    homepage = "https://github.com/wardsec/ward";
    platforms = lib.platforms.linux;
    mainProgram = component;
  };
}
