# systemd sandbox settings shared by the Ward services on NixOS; the same settings as
# packaging/systemd/*.service, which the deploytest checks compare.
{
  NoNewPrivileges = true;
  ProtectSystem = "strict";
  PrivateTmp = true;
  PrivateDevices = true;
  DevicePolicy = "closed";
  ProtectKernelTunables = true;
  ProtectKernelModules = true;
  ProtectKernelLogs = true;
  ProtectControlGroups = true;
  ProtectClock = true;
  ProtectHostname = true;
  RestrictNamespaces = true;
  RestrictRealtime = true;
  RestrictSUIDSGID = true;
  LockPersonality = true;
  MemoryDenyWriteExecute = true;
  KeyringMode = "private";
  SystemCallArchitectures = "native";
  SystemCallFilter = [ "@system-service" ];
  SystemCallErrorNumber = "EPERM";
  UMask = "0077";
}
