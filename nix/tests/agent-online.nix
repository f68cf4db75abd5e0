# NixOS VM test: a controller and an agent on two VMs; the agent enrolls with a one-time
# token and the controller lists it online. Run with
#   nix build 'git+file:.?dir=nix#checks.x86_64-linux.agent-online' -L
{ pkgs, self }:

pkgs.testers.runNixOSTest {
  name = "ward-agent-online";

  nodes.controller = {
    imports = [ self.nixosModules.ward-controller ];
    services.ward-controller = {
      enable = true;
      trustDomain = "ward.test";
      dnsNames = [ "controller" ];
      openFirewall = true;
    };
  };

  nodes.agent = {
    imports = [ self.nixosModules.ward-agent ];
    services.ward-agent = {
      enable = true;
      controller = "controller:7443";
      caFile = "/run/ward/ca.pem";
      enrollmentTokenFile = "/run/ward/enrollment-token";
    };
  };

  testScript = ''
    import json

    data = "/var/lib/ward-controller"
    wardctl = (
        "wardctl --controller 127.0.0.1:7443"
        f" --cert {data}/operators/admin/cert.pem --key {data}/operators/admin/key.pem"
        f" --ca {data}/ca.pem"
    )

    start_all()
    controller.wait_for_unit("ward-controller.service")
    controller.wait_for_open_port(7443)

    # Not enrolled and no token: the agent's unit stays inactive.
    agent.wait_for_unit("multi-user.target")
    agent.fail("systemctl is-active ward-agent.service")

    controller.succeed(f"{wardctl} tenant create clinic-a")
    token = controller.succeed(f"{wardctl} token create --tenant clinic-a").strip()
    ca = controller.succeed(f"cat {data}/ca.pem")

    agent.succeed("install -d -m 0700 /run/ward")
    agent.succeed(f"printf '%s' '{ca}' > /run/ward/ca.pem")
    agent.succeed(f"(umask 077; printf '%s' '{token}' > /run/ward/enrollment-token)")
    agent.succeed("systemctl start ward-agent.service")
    agent.wait_for_unit("ward-agent.service")
    agent.succeed("test -e /var/lib/ward-agent/cert.pem")
    agent.succeed("test \"$(stat -c %a /var/lib/ward-agent)\" = 700")

    def online(_):
        agents = json.loads(controller.succeed(f"{wardctl} -o json agent list"))
        return any(a.get("tenant") == "clinic-a" and a.get("online") for a in agents)

    retry(online, timeout=120)

    # Restarted without its token, the enrolled agent comes back online.
    agent.succeed("rm /run/ward/enrollment-token && systemctl restart ward-agent.service")
    agent.wait_for_unit("ward-agent.service")
    retry(online, timeout=120)
  '';
}
