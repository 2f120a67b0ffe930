<?xml version="1.0" encoding="UTF-8"?>
<!-- Shows an Atom feed of feedsvc as a page when it is opened in a browser. Feed readers
     ignore this stylesheet. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                xmlns:a="http://www.w3.org/2005/Atom" exclude-result-prefixes="a">
  <xsl:output method="html" encoding="UTF-8" indent="yes"
              doctype-system="about:legacy-compat"/>
  <xsl:variable name="lang" select="/a:feed/@xml:lang"/>
  <xsl:variable name="self" select="/a:feed/a:link[@rel='self']/@href"/>
  <xsl:variable name="page" select="/a:feed/a:link[@rel='alternate'][@type='text/html']/@href"/>

  <xsl:template match="/">
    <html lang="{$lang}">
      <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title><xsl:value-of select="a:feed/a:title"/></title>
        <style>
          body { font: 16px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 62rem;
                 padding: 0 1rem; overflow-wrap: anywhere; color: #1b1f24; }
          .note { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px;
                  padding: .6rem .9rem; }
          code { display: block; margin-top: .3rem; font-size: .9rem; }
          ol { list-style: none; padding: 0; }
          li { border-top: 1px solid #d0d7de; padding: .6rem 0; }
          h2 { font-size: 1.05rem; margin: 0 0 .2rem; }
          .meta { color: #57606a; font-size: .9rem; margin: 0; }
          a { color: #0a56b3; }
        </style>
      </head>
      <body>
        <h1><xsl:value-of select="a:feed/a:title"/></h1>
        <p class="note">
          <xsl:choose>
            <xsl:when test="$lang = 'ru'">Это лента новостей: скопируйте этот адрес в свою программу для лент.</xsl:when>
            <xsl:when test="$lang = 'kk'">Бұл жаңалық арнасы: осы мекенжайды арна оқитын бағдарламаға көшіріңіз.</xsl:when>
            <xsl:otherwise>This is a feed: copy this address into your reader.</xsl:otherwise>
          </xsl:choose>
          <code><xsl:value-of select="$self"/></code>
        </p>
        <xsl:if test="$page">
          <p><a href="{$page}">
            <xsl:choose>
              <xsl:when test="$lang = 'ru'">Страница этой ленты</xsl:when>
              <xsl:when test="$lang = 'kk'">Осы арнаның беті</xsl:when>
              <xsl:otherwise>The page of this feed</xsl:otherwise>
            </xsl:choose>
          </a></p>
        </xsl:if>
        <ol>
          <xsl:for-each select="a:feed/a:entry">
            <li>
              <h2><a href="{a:link[@rel='alternate']/@href}"><xsl:value-of select="a:title"/></a></h2>
              <p class="meta">
                <!-- feeds carry Almaty times; a text dump's item has a date only (00:00:00) -->
                <xsl:variable name="when" select="(a:published | a:updated[not(../a:published)])[1]"/>
                <xsl:value-of select="substring($when, 1, 10)"/>
                <xsl:if test="substring($when, 12, 8) != '00:00:00'">
                  <xsl:value-of select="concat(' ', substring($when, 12, 5))"/>
                </xsl:if>
                · <xsl:value-of select="a:author/a:name"/>
              </p>
              <p><xsl:value-of select="a:summary"/></p>
            </li>
          </xsl:for-each>
        </ol>
      </body>
    </html>
  </xsl:template>
</xsl:stylesheet>
