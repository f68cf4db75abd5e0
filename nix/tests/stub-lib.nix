# The few nixpkgs lib functions the Ward modules use, written over builtins, so that the
# modules can be evaluated without nixpkgs (see eval.nix). Option types are names only:
# values are not type-checked here.
rec {
  mkOption = attrs: attrs;
  mkEnableOption = name: {
    default = false;
    description = "Whether to enable ${name}.";
  };
  mkIf = cond: value: if cond then value else { };
  literalExpression = text: {
    _type = "literalExpression";
    inherit text;
  };

  types = {
    str = "str";
    bool = "bool";
    package = "package";
    ints.positive = "positive int";
    listOf = t: "list of ${t}";
    nullOr = t: "null or ${t}";
    enum = values: "one of ${concatStringsSep ", " values}";
  };

  concatStringsSep = builtins.concatStringsSep;
  optionals = cond: list: if cond then list else [ ];
  hasPrefix = prefix: s: builtins.substring 0 (builtins.stringLength prefix) s == prefix;
  removePrefix =
    prefix: s:
    if hasPrefix prefix s then
      builtins.substring (builtins.stringLength prefix) (builtins.stringLength s) s
    else
      s;
  splitString = sep: s: builtins.filter builtins.isString (builtins.split sep s);
  last = list: builtins.elemAt list (builtins.length list - 1);
  toInt = s: builtins.fromJSON s;
  escapeShellArg = arg: "'${builtins.replaceStrings [ "'" ] [ "'\\''" ] (toString arg)}'";
  escapeShellArgs = args: concatStringsSep " " (map escapeShellArg args);
}
