// kstatus reads one live object through the real sigs.k8s.io/cli-utils kstatus library, the one Flux
// (wait: true, healthChecks) and Helm's watcher use, and prints its status: InProgress, Current, Failed...
//
//	KUBECONFIG=... kstatus <namespace> <name>      (a camswebhook.io/v1alpha1 PhoneWebhook)
package main

import (
	"context"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: kstatus NAMESPACE NAME")
		os.Exit(2)
	}
	config, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	client := dynamic.NewForConfigOrDie(config)
	resource := schema.GroupVersionResource{Group: "camswebhook.io", Version: "v1alpha1", Resource: "phonewebhooks"}
	obj, err := client.Resource(resource).Namespace(os.Args[1]).Get(context.Background(), os.Args[2], metav1.GetOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	result, err := status.Compute(obj)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%s\t%s\n", result.Status, result.Message)
}
