# NixOS configuration of a Ward collector on a clinic's own hypervisor (qcow2 image).
# Site settings come from /etc/ward/site.nix on the VM, so one image serves every
# clinic; see README.md for the steps.
{
  config,
  lib,
  pkgs,
  modulesPath,
  ...
}:

let
  site =
    if builtins.pathExists /etc/ward/site.nix then
      import /etc/ward/site.nix
    else
      {
        controller = "controller.example.invalid:7443";
        sshCAPublicKey = "";
      };
in
{
  imports = [ "${modulesPath}/profiles/qemu-guest.nix" ];

  system.stateVersion = "25.05";
  networking.hostName = "ward-collector";

  boot.loader.grub.device = "/dev/vda";
  fileSystems."/" = {
    device = "/dev/disk/by-label/nixos";
    fsType = "ext4";
  };

  # SSH by certificate only.
  services.openssh = {
    enable = true;
    settings = {
      PasswordAuthentication = false;
      KbdInteractiveAuthentication = false;
      PermitRootLogin = "no";
      AuthorizedKeysFile = "none";
    };
    extraConfig = ''
      TrustedUserCAKeys /etc/ssh/ward-user-ca.pub
      AuthorizedPrincipalsFile /etc/ssh/auth_principals/%u
    '';
  };
  environment.etc."ssh/ward-user-ca.pub".text = site.sshCAPublicKey;
  environment.etc."ssh/auth_principals/msp".text = "msp-technician\n";
  users.mutableUsers = false;
  users.users.msp = {
    isNormalUser = true;
    extraGroups = [ "wheel" ];
  };
  security.sudo.wheelNeedsPassword = false;

  services.ward-agent = {
    enable = true;
    inherit (site) controller;
    caFile = "/etc/ward/ca.pem";
    enrollmentTokenFile = "/etc/ward/enrollment-token";
    roles = [ "collector" ];
  };

  system.build.qcow2 = import "${modulesPath}/../lib/make-disk-image.nix" {
    inherit config lib pkgs;
    format = "qcow2";
    diskSize = "auto";
    additionalSpace = "4096M";
    partitionTableType = "legacy";
  };
}
