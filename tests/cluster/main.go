// Command kubecluster is a multi-call binary holding a test Kubernetes control plane:
// etcd, kube-apiserver, kube-controller-manager and kube-scheduler, built from the
// upstream Go modules. It is test infrastructure for the drill project only.
//
//	kubecluster etcd [etcd flags]
//	kubecluster kube-apiserver [flags]
//	kubecluster kube-controller-manager [flags]
//	kubecluster kube-scheduler [flags]
//
// It also dispatches on the name it was invoked as (symlinks named after a component).
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	_ "time/tzdata" // CronJob time zones

	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

const usage = "usage: kubecluster etcd|kube-apiserver|kube-controller-manager|kube-scheduler [flags]"

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if !isComponent(name) {
		if len(args) == 0 {
			fmt.Fprintln(os.Stderr, usage)
			os.Exit(2)
		}
		name, args = args[0], args[1:]
	}
	os.Exit(run(name, args))
}

func isComponent(name string) bool {
	switch name {
	case "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler":
		return true
	}
	return false
}

func run(name string, args []string) int {
	switch name {
	case "etcd":
		// etcdmain.Main parses os.Args itself (args[0] is the program name).
		os.Args = append([]string{"etcd"}, args...)
		etcdmain.Main(os.Args)
		return 0
	case "kube-apiserver":
		os.Args = append([]string{name}, args...)
		cmd := apiserver.NewAPIServerCommand()
		cmd.SetArgs(args)
		return cli.Run(cmd)
	case "kube-controller-manager":
		os.Args = append([]string{name}, args...)
		cmd := controllermanager.NewControllerManagerCommand()
		cmd.SetArgs(args)
		return cli.Run(cmd)
	case "kube-scheduler":
		os.Args = append([]string{name}, args...)
		cmd := scheduler.NewSchedulerCommand()
		cmd.SetArgs(args)
		return cli.Run(cmd)
	case "-h", "--help", "help":
		fmt.Println(usage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "kubecluster: unknown component %q\n%s\n", strings.TrimSpace(name), usage)
	return 2
}
