#compdef llada

_llada_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _LLADA_COMPLETE=complete_zsh llada)
}

compdef _llada_completion llada
