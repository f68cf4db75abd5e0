module github.com/wardsec/ward/agent

go 1.26.7

require (
	github.com/Ullaakut/nmap/v3 v3.0.6
	github.com/google/gopacket v1.1.19
	github.com/gopacket/gopacket v1.7.7
	github.com/gosnmp/gosnmp v1.47.0
	github.com/pkg/sftp v1.13.12
	github.com/wardsec/ward/pkg v0.0.0
	github.com/wardsec/ward/proto v0.0.0
	go.uber.org/goleak v1.3.0
	golang.org/x/crypto v0.59.0
	golang.org/x/net v0.62.0
	golang.org/x/sync v0.25.0
	golang.org/x/sys v0.50.0
	golang.org/x/time v0.16.0
	google.golang.org/grpc v1.85.0
	google.golang.org/protobuf v1.36.12
)

require (
	github.com/kr/fs v0.1.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/text v0.44.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260817212433-ac3dfec99bb1 // indirect
)

replace (
	github.com/wardsec/ward/pkg => ../pkg
	github.com/wardsec/ward/proto => ../proto
)
