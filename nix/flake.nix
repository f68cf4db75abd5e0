# Ward's flake: the agent and controller packages, their NixOS modules, the collector's
# NixOS configuration and disk image, and a NixOS VM test.
#
# The packages build from the whole repository (../), so use the flake through the
# repository with dir=nix, for example:
#   nix build 'git+file:.?dir=nix#ward-agent'
#   nix build 'github:wardsec/ward?dir=nix#ward-controller'
{
  description = "Ward: HIPAA Security Rule compliance for clinics, run by an MSP";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      version = "0.0.0-${self.shortRev or "dirty"}";

      # The modules default to the package built by this flake.
      withPackage =
        name: module:
        { pkgs, lib, ... }:
        {
          imports = [ module ];
          services.${name}.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.${name};
        };
    in
    {
      packages = forAllSystems (
        pkgs:
        let
          # Ward's go.mod asks for Go 1.26.
          buildGoModule = pkgs.buildGo126Module or pkgs.buildGoModule;
          ward = component: pkgs.callPackage ./package.nix { inherit buildGoModule component version; };
        in
        {
          ward-agent = ward "ward-agent";
          ward-controller = ward "ward-controller";
          default = ward "ward-agent";
        }
      );

      nixosModules = {
        ward-agent = withPackage "ward-agent" ./modules/ward-agent.nix;
        ward-controller = withPackage "ward-controller" ./modules/ward-controller.nix;
      };

      # The collector VM for a clinic's own hypervisor; see README.md.
      nixosConfigurations.collector = nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [
          self.nixosModules.ward-agent
          ./collector.nix
        ];
      };

      checks.x86_64-linux.agent-online = import ./tests/agent-online.nix {
        pkgs = nixpkgs.legacyPackages.x86_64-linux;
        inherit self;
      };
    };
}
