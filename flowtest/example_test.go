package flowtest_test

import (
	"context"
	"fmt"

	"github.com/flowd/flowd/flowtest"
)

// Run the flow tests of a folder, as `flowd test` does, and print the
// failures: here a deliberately broken hello flow.
func Example() {
	suite, err := flowtest.Load("testdata/broken")
	if err != nil {
		fmt.Println(err)
		return
	}
	results := suite.Run(context.Background(), flowtest.Options{})
	for _, r := range results {
		if r.Failure != nil {
			fmt.Println(r.Failure)
		}
	}
	fmt.Printf("%d failed of %d\n", flowtest.Failed(results), len(results))
	// Output:
	// hello.test.json: case "greets by name": step 1: node "reply": expected json message = "hello, ada", got "bye"
	// hello.test.json: case "greets the world without a name": step 1: node "reply": expected json message = "hello, world", got "bye"
	// 2 failed of 3
}
