# Evaluates a Ward NixOS module without nixpkgs, with stub lib and pkgs, and returns what
# the deploytest checks look at: the assertions, the generated systemd service, users
# and firewall ports. For example:
#
#   nix-instantiate --eval --strict --json --option build-users-group '' nix/tests/eval.nix \
#     --arg module ./nix/modules/ward-agent.nix --argstr service ward-agent \
#     --arg settings '{ enable = true; controller = "c:7443"; caFile = "/etc/ward/ca.pem";
#                       enrollmentTokenFile = "/run/keys/token"; }'
{
  module,
  service,
  settings ? { },
}:

let
  lib = import ./stub-lib.nix;
  pkgs = {
    callPackage = path: args: {
      type = "derivation";
      outPath = "${builtins.storeDir}/00000000000000000000000000000000-${args.component}";
    };
    writeScript = name: text: "${builtins.storeDir}/11111111111111111111111111111111-${name}";
  };

  evaluated = import module { inherit config lib pkgs; };
  options = evaluated.options.services.${service};
  defaults = builtins.mapAttrs (name: option: option.default or null) options;
  config.services.${service} = defaults // settings;
  result = evaluated.config;
in
{
  options = builtins.attrNames options;
  assertions = map (a: { inherit (a) assertion message; }) (result.assertions or [ ]);
  service = result.systemd.services.${service} or null;
  users = builtins.attrNames (result.users.users or { });
  firewallPorts = result.networking.firewall.allowedTCPPorts or [ ];
}
