// Package readmecheck holds the user documentation to the code: every Go
// snippet of README.md compiles as a program of its own in a fresh module
// (with the replace lines the README tells users to write), every relative
// link of every Markdown file resolves, and no page a user reads is phrased
// as a development log. It has tests only.
package readmecheck
