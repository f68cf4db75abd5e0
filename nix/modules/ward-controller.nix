# NixOS module of the Ward controller: services.ward-controller.
#
# The first start runs `ward-controller init` (CA, serving certificate, policy key, admin
# operator) in the data directory; every start then runs `ward-controller serve` as the
# unprivileged ward-controller user in a systemd sandbox.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  cfg = config.services.ward-controller;
  inherit (lib) mkOption types;

  hardening = import ./hardening.nix;
  initOnce = pkgs.writeScript "ward-controller-init-once" (
    builtins.readFile ../../packaging/libexec/ward-controller-init-once
  );
  port = lib.toInt (lib.last (lib.splitString ":" cfg.listen));
in
{
  options.services.ward-controller = {
    enable = lib.mkEnableOption "the Ward controller";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ../package.nix { component = "ward-controller"; };
      defaultText = lib.literalExpression ''pkgs.callPackage ./nix/package.nix { component = "ward-controller"; }'';
      description = "The ward-controller package (with wardctl).";
    };

    trustDomain = mkOption {
      type = types.str;
      example = "ward.example-msp.com";
      description = "Trust domain of the installation; fixed at the first start.";
    };

    name = mkOption {
      type = types.nullOr types.str;
      default = null;
      description = "Controller name in its certificate; null takes ward-controller's default.";
    };

    dnsNames = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "ward.example-msp.com" ];
      description = "DNS names of the controller, added to its serving certificate at the first start.";
    };

    dataDir = mkOption {
      type = types.str;
      default = "/var/lib/ward-controller";
      description = "Data directory (store, CA, policy key), under /var/lib; mode 0700.";
    };

    listen = mkOption {
      type = types.str;
      default = ":7443";
      description = "gRPC address for agents and wardctl.";
    };

    metricsListen = mkOption {
      type = types.str;
      default = "127.0.0.1:7090";
      description = "Address of the Prometheus metrics and health endpoints.";
    };

    heartbeatInterval = mkOption {
      type = types.str;
      default = "30s";
      description = "Interval agents send heartbeats at.";
    };

    certTTL = mkOption {
      type = types.str;
      default = "24h";
      description = "Lifetime of agent certificates.";
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

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open the gRPC port in the firewall.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = lib.hasPrefix "/var/lib/" cfg.dataDir;
        message = "services.ward-controller.dataDir must be under /var/lib.";
      }
    ];

    users.users.ward-controller = {
      isSystemUser = true;
      group = "ward-controller";
      home = cfg.dataDir;
      description = "Ward controller";
    };
    users.groups.ward-controller = { };

    environment.systemPackages = [ cfg.package ];
    networking.firewall.allowedTCPPorts = lib.optionals cfg.openFirewall [ port ];

    systemd.services.ward-controller = {
      description = "Ward controller";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];

      environment = {
        WARD_CONTROLLER_BIN = "${cfg.package}/bin/ward-controller";
        WARD_TRUST_DOMAIN = cfg.trustDomain;
        WARD_NAME = if cfg.name == null then "" else cfg.name;
        WARD_DNS_NAMES = lib.concatStringsSep " " cfg.dnsNames;
      };

      serviceConfig = hardening // {
        Type = "simple";
        User = "ward-controller";
        Group = "ward-controller";
        ExecStartPre = "${initOnce} ${cfg.dataDir}";
        ExecStart = lib.escapeShellArgs [
          "${cfg.package}/bin/ward-controller"
          "serve"
          "--data-dir"
          cfg.dataDir
          "--listen"
          cfg.listen
          "--metrics-listen"
          cfg.metricsListen
          "--heartbeat-interval"
          cfg.heartbeatInterval
          "--cert-ttl"
          cfg.certTTL
          "--log-level"
          cfg.logLevel
        ];
        Restart = "on-failure";
        RestartSec = "5s";
        TimeoutStopSec = "60s";
        LimitNOFILE = 65536;
        StateDirectory = lib.removePrefix "/var/lib/" cfg.dataDir;
        StateDirectoryMode = "0700";
        ReadWritePaths = [ cfg.dataDir ];
        ProtectHome = true;
        ProtectProc = "invisible";
        ProcSubset = "pid";
        CapabilityBoundingSet = [ "" ];
        AmbientCapabilities = [ "" ];
        RestrictAddressFamilies = [
          "AF_INET"
          "AF_INET6"
          "AF_UNIX"
        ];
      };
    };
  };
}
