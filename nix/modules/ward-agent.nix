# NixOS module of the Ward agent: services.ward-agent.
#
# The agent enrolls once with a one-time token read from a file (never from the Nix
# store) and then runs `ward-agent run` in a systemd sandbox; the collector role adds
# raw sockets for discovery.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  cfg = config.services.ward-agent;
  inherit (lib) mkOption types;

  collector = builtins.elem "collector" cfg.roles;
  role = if collector then "collector" else "host";
  hardening = import ./hardening.nix;
  # The same script as the packages' ExecStartPre.
  enrollOnce = pkgs.writeScript "ward-agent-enroll-once" (
    builtins.readFile ../../packaging/libexec/ward-agent-enroll-once
  );
  inStore = path: lib.hasPrefix builtins.storeDir (toString path);
  # toString: a Nix path given by mistake is refused by the assertion below, not copied
  # into the store by an interpolation.
  tokenFile = toString cfg.enrollmentTokenFile;
in
{
  options.services.ward-agent = {
    enable = lib.mkEnableOption "the Ward agent";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ../package.nix { component = "ward-agent"; };
      defaultText = lib.literalExpression ''pkgs.callPackage ./nix/package.nix { component = "ward-agent"; }'';
      description = "The ward-agent package.";
    };

    controller = mkOption {
      type = types.str;
      example = "ward.example-msp.com:7443";
      description = "host:port of the Ward controller.";
    };

    caFile = mkOption {
      type = types.str;
      example = "/etc/ward/ca.pem";
      description = "Path of the controller's trust bundle (its data directory's ca.pem).";
    };

    enrollmentTokenFile = mkOption {
      type = types.str;
      example = "/run/secrets/ward-enrollment-token";
      description = ''
        Path of the file holding the one-time enrollment token, read only until the agent
        is enrolled. It must be a path outside the Nix store (which every user can read):
        a file written at boot by agenix, sops-nix or a fetch from a secret store.
      '';
    };

    roles = mkOption {
      type = types.listOf (
        types.enum [
          "host"
          "collector"
        ]
      );
      default = [ "host" ];
      description = ''
        Roles of the agent. With "collector" the agent enrolls as the clinic's collector
        and may open raw and packet sockets (CAP_NET_RAW, CAP_NET_ADMIN) for discovery.
      '';
    };

    hostRoot = mkOption {
      type = types.str;
      default = "/";
      description = "Root of the file tree the checks read.";
    };

    stateDir = mkOption {
      type = types.str;
      default = "/var/lib/ward-agent";
      description = "State directory (key, certificate, spool), under /var/lib; mode 0700.";
    };

    logLevel = mkOption {
      type = types.enum [
        "debug"
        "info"
        "warn"
        "error"
      ];
      default = "info";
      description = "Log level.";
    };

    spoolMaxBytes = mkOption {
      type = types.ints.positive;
      default = 67108864;
      description = "Bound of the on-disk spool of unacknowledged messages, in bytes.";
    };

    extraArgs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [
        "--log-level"
        "debug"
      ];
      description = "Further arguments of `ward-agent run`.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = builtins.isString cfg.enrollmentTokenFile && !inStore cfg.enrollmentTokenFile;
        message = "services.ward-agent.enrollmentTokenFile must be a path outside the Nix store, which every user can read.";
      }
      {
        assertion = lib.hasPrefix "/var/lib/" cfg.stateDir;
        message = "services.ward-agent.stateDir must be under /var/lib.";
      }
    ];

    systemd.services.ward-agent = {
      description = "Ward agent";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];

      # Start once enrolled, or when a token waits; otherwise stay inactive.
      unitConfig = {
        ConditionPathExists = [
          "|${cfg.stateDir}/cert.pem"
          "|${tokenFile}"
        ];
        StartLimitIntervalSec = 0;
      };

      environment = {
        WARD_AGENT_BIN = "${cfg.package}/bin/ward-agent";
        WARD_CONTROLLER = cfg.controller;
        WARD_CA_FILE = cfg.caFile;
        WARD_TOKEN_FILE = tokenFile;
        WARD_ROLE = role;
      };

      serviceConfig = hardening // {
        Type = "simple";
        ExecStartPre = "${enrollOnce} ${cfg.stateDir}";
        ExecStart = lib.escapeShellArgs (
          [
            "${cfg.package}/bin/ward-agent"
            "run"
            "--state-dir"
            cfg.stateDir
            "--controller"
            cfg.controller
            "--host-root"
            cfg.hostRoot
            "--log-level"
            cfg.logLevel
            "--spool-max-bytes"
            (toString cfg.spoolMaxBytes)
          ]
          ++ cfg.extraArgs
        );
        Restart = "always";
        RestartSec = "10s";
        TimeoutStopSec = "30s";
        StateDirectory = lib.removePrefix "/var/lib/" cfg.stateDir;
        StateDirectoryMode = "0700";
        ReadWritePaths = [ cfg.stateDir ];
        # Read-only, not hidden: checks look at home directories' SSH settings and modes.
        ProtectHome = "read-only";
        CapabilityBoundingSet =
          if collector then
            [
              "CAP_NET_RAW"
              "CAP_NET_ADMIN"
            ]
          else
            [ "" ];
        AmbientCapabilities =
          if collector then
            [
              "CAP_NET_RAW"
              "CAP_NET_ADMIN"
            ]
          else
            [ "" ];
        RestrictAddressFamilies = [
          "AF_INET"
          "AF_INET6"
          "AF_UNIX"
        ]
        ++ lib.optionals collector [
          "AF_PACKET"
          "AF_NETLINK"
        ];
      };
    };
  };
}
